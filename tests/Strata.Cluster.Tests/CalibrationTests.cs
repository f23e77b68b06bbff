using Orleans.TestingHost;
using Strata.Contracts;
using Strata.Grains;
using Strata.Hosting;
using Strata.Hosting.Calibration;
using Strata.Models.Config;
using Strata.Models.Planning;

namespace Strata.Cluster.Tests;

/// <summary>Start-up calibration: what a silo measures, that it is advertised, and that a dry run plans with it
/// without loading anything. Values are checked for sense, never against a clock.</summary>
public sealed class CalibrationTests : IDisposable
{
    private readonly TinyModelStore _tiny = new("calibration");
    private string Store => _tiny.Path;
    private const string Package = TinyModel.Package;

    public void Dispose() => _tiny.Dispose();

    [Fact]
    public void Calibration_measures_the_reference_layer_on_the_silos_settings()
    {
        var c = SiloCalibrator.Measure(new StrataSiloOptions { Threads = 1 });
        c.Validate("this silo");
        var reference = SiloCalibrator.ReferenceConfig;
        long parameters = LlamaTensors.Expected(reference).Where(t => t.Layer == 1).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(parameters * 4, c.LayerBytes); // fp32 on the CPU
        Assert.Equal(ModelFootprint.LayerFlopsOf(reference), c.LayerFlopsPerToken);
        Assert.True(c.StageSeconds(c.LayerBytes, c.LayerFlopsPerToken, 1, 16) > 0);
        Assert.True(SiloCalibration.TryParse(c.Format(), out var back));
        Assert.Equal(c, back);
    }

    [Fact]
    public void A_given_speed_overrides_the_calibration_and_calibrate_false_skips_it()
    {
        static SiloCalibrationResult Result(params string[] args) => (SiloCalibrationResult)StrataSiloHost.CreateBuilder(args).Services
            .Single(d => d.ServiceType == typeof(SiloCalibrationResult)).ImplementationInstance!;
        Assert.Null(Result("--speed", "300", "--threads", "1").Value);
        Assert.Null(Result("--calibrate", "false", "--threads", "1").Value);
        Assert.NotNull(Result("--threads", "1").Value);
    }

    [Fact]
    public async Task Dry_run_plans_with_the_advertised_calibrations_and_loads_nothing()
    {
        var builder = new InProcessTestClusterBuilder(2);
        string store = Store;
        builder.ConfigureSilo((options, silo) => silo.AddStrata(null, o =>
        {
            o.Memory = "1GB";
            o.ModelStore = store;
            o.Threads = 1;
            o.DrainOnShutdown = false;
            o.Calibrate = true;
        }));
        await using var cluster = builder.Build();
        await cluster.DeployAsync();
        var grain = cluster.Client.GetGrain<IModelGrain>("dry");
        var plan = await grain.PlanDeploy(new DeployRequest(Package, MaxContext: 64, MaxSessions: 2));
        Assert.NotEmpty(plan.Stages);
        Assert.NotNull(plan.StepSeconds);
        Assert.True(plan.TokenSeconds >= plan.StepSeconds - 2 * PlanOptions.DefaultHopSeconds);
        Assert.All(plan.Stages, s => Assert.True(s.PredictedSeconds > 0));
        Assert.Equal(2, plan.Silos.Count);
        Assert.All(plan.Silos, s => Assert.Contains("reference layer", s));
        Assert.Contains("predicted at batch 1", plan.Description);

        var two = await grain.PlanDeploy(new DeployRequest(Package, Stages: 2, MaxContext: 64, MaxSessions: 2));
        Assert.Equal(2, two.Stages.Select(s => s.Silo).Distinct().Count());

        var status = await grain.GetStatus();
        Assert.Equal(DeploymentState.NotDeployed, status.State);
        Assert.Empty(status.Stages);
    }
}
