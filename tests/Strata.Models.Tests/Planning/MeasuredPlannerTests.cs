using Strata.Models.Planning;
using static Strata.Models.Tests.Planning.PlanAssert;

namespace Strata.Models.Tests.Planning;

/// <summary>The planner over calibrated silos: predicted step times decide the silos, their order and the split.</summary>
public class MeasuredPlannerTests
{
    private static readonly ModelFootprint TenLayers = Uniform(10, GB);

    private static StagePlan Plan(ModelFootprint model, SiloCapacity[] silos, PlanOptions? options = null)
    {
        options ??= new PlanOptions { Headroom = 0, KvTokens = 0 };
        var plan = StagePlanner.Plan(model, silos, options);
        Valid(plan, model, silos, options);
        Assert.NotNull(plan.Prediction);
        return plan;
    }

    [Fact]
    public void Calibration_predicts_reading_plus_work_per_row_plus_a_cost_per_layer()
    {
        var c = Calibrated(bytesPerSecond: 10e9, flopsPerSecond: 1e11, secondsPerLayer: 0.002);
        Assert.Equal(1e-10, c.SecondsPerByte, 1e-15);
        Assert.Equal(1e-11, c.SecondsPerFlop, 1e-16);
        Assert.Equal(0.002, c.SecondsPerLayer, 1e-9);
        // 4 layers, 1 GB read, 0.5 GFLOP a row, 8 rows: 8 ms + 100 ms + 40 ms.
        Assert.Equal(0.148, c.StageSeconds(GB, GB / 2, 4, 8), 1e-9);

        // A layer faster than the raw bandwidth allows (it sat in the caches) is taken at its own speed.
        var cached = new SiloCalibration(1e9, 1_000_000, 1, 1e-4, 1e-4);
        Assert.Equal(1e-10, cached.SecondsPerByte, 1e-15);
        Assert.Equal(0, cached.SecondsPerLayer, 1e-15);

        Assert.True(SiloCalibration.TryParse(c.Format(), out var back));
        Assert.Equal(c, back);
        Assert.False(SiloCalibration.TryParse("1;2;3", out _));
        Assert.False(SiloCalibration.TryParse("1;2;3;-4;5", out _));
        Assert.False(SiloCalibration.TryParse(null, out _));
    }

    [Fact]
    public void Leaving_a_slow_silo_out_wins()
    {
        // Only the slow host holds the model whole, so fewest-stages would put it all there (1 s a step). Two fast
        // devices that each hold half take 50 ms a stage; even one layer on the host (100 ms) would slow them.
        SiloCapacity[] silos =
        [
            new("host", "cpu", 64 * GB, Calibration: Calibrated(10e9)),
            new("gpu-a", "cuda:0", 6 * GB, Calibration: Calibrated(100e9)),
            new("gpu-b", "cuda:1", 6 * GB, Calibration: Calibrated(100e9)),
        ];
        var plan = Plan(TenLayers, silos);
        Assert.Equal(["gpu-a", "gpu-b"], plan.Stages.Select(s => s.SiloId));
        Assert.Equal([5, 5], plan.Stages.Select(s => s.LayerCount));
        Assert.Equal(0.05 + PlanOptions.DefaultHopSeconds, plan.Prediction!.StepSeconds, 1e-9);

        // Without calibrations the same silos give the old answer: one stage, on the one silo that holds it all.
        var old = StagePlanner.Plan(TenLayers, silos.Select(s => s with { Calibration = null }).ToArray(), new PlanOptions { Headroom = 0, KvTokens = 0 });
        Assert.Equal("host", Assert.Single(old.Stages).SiloId);
        Assert.Null(old.Prediction);
    }

    [Fact]
    public void A_slow_silo_is_left_out_even_when_it_has_room_for_a_share()
    {
        // Both hold the model. The slow one at a tenth of the speed would need a tenth of the layers to keep up,
        // but one layer there already takes as long as the fast silo's whole step with that layer gone; the hop tips it.
        SiloCapacity[] silos =
        [
            new("fast", "cuda:0", 80 * GB, Calibration: Calibrated(100e9)),
            new("slow", "cpu", 80 * GB, Calibration: Calibrated(10e9)),
        ];
        var plan = Plan(TenLayers, silos);
        Assert.Equal("fast", Assert.Single(plan.Stages).SiloId);
        Assert.Equal(0.1, plan.Prediction!.StepSeconds, 1e-9);
    }

    [Fact]
    public void A_fast_small_gpu_takes_fewer_layers_than_its_memory_allows()
    {
        // The GPU holds 24 of 30 layers and reads twice as fast as the host (which holds 16): 20 and 10 layers take 1 s each, where
        // filling the GPU (24 and 6) would leave the host at 0.6 s and the GPU the bottleneck at 1.2 s.
        var model = Uniform(30, GB);
        SiloCapacity[] silos =
        [
            new("gpu", "cuda:0", 24 * GB, Calibration: Calibrated(20e9)),
            new("host", "cpu", 16 * GB, Calibration: Calibrated(10e9)),
        ];
        var plan = Plan(model, silos, new PlanOptions { Headroom = 0, KvTokens = 0, HopSeconds = 0 });
        var gpu = Assert.Single(plan.Stages, s => s.SiloId == "gpu");
        Assert.Equal(20, gpu.LayerCount);
        Assert.Equal(1.0, plan.Prediction!.SlowestStageSeconds, 1e-9);

        // Without calibrations the preferred device takes all its memory holds.
        var old = StagePlanner.Plan(model, silos.Select(s => s with { Calibration = null }).ToArray(), new PlanOptions { Headroom = 0, KvTokens = 0 });
        Assert.Equal(24, Assert.Single(old.Stages, s => s.SiloId == "gpu").LayerCount);
    }

    [Fact]
    public void The_batch_moves_layers_to_the_device_with_more_compute()
    {
        // Same bandwidth; the GPU computes 20x faster. At batch 1 reading dominates and the split is even; at batch
        // 64 work per row dominates and the GPU takes all its memory allows.
        var model = Uniform(20, GB);
        SiloCapacity[] silos =
        [
            new("gpu", "cuda:0", 16 * GB, Calibration: Calibrated(20e9, flopsPerSecond: 2e12)),
            new("host", "cpu", 64 * GB, Calibration: Calibrated(20e9, flopsPerSecond: 1e11)),
        ];
        int GpuLayers(int batch) => Assert.Single(
            Plan(model, silos, new PlanOptions { Headroom = 0, KvTokens = 0, Batch = batch }).Stages, s => s.SiloId == "gpu").LayerCount;
        Assert.InRange(GpuLayers(1), 10, 11);
        Assert.Equal(16, GpuLayers(64));
    }

    [Fact]
    public void A_hop_is_taken_only_when_it_saves_more_than_it_costs()
    {
        SiloCapacity[] twins = [new("a", "cpu", 80 * GB, Calibration: Calibrated(100e9)), new("b", "cpu", 80 * GB, Calibration: Calibrated(100e9))];
        var cheap = Plan(TenLayers, twins, new PlanOptions { Headroom = 0, KvTokens = 0, HopSeconds = 0.01 });
        Assert.Equal([5, 5], cheap.Stages.Select(s => s.LayerCount)); // 50 ms + 10 ms beats 100 ms
        var dear = Plan(TenLayers, twins, new PlanOptions { Headroom = 0, KvTokens = 0, HopSeconds = 0.06 });
        Assert.Equal("a", Assert.Single(dear.Stages).SiloId); // 50 ms + 60 ms does not
    }

    [Fact]
    public void An_exact_stage_count_is_kept_and_the_prediction_is_shown()
    {
        SiloCapacity[] silos =
        [
            new("a", "cuda:0", 80 * GB, Calibration: Calibrated(30e9)),
            new("b", "cuda:1", 80 * GB, Calibration: Calibrated(10e9)),
            new("c", "cpu", 80 * GB, Calibration: Calibrated(10e9)),
        ];
        var model = Uniform(10, GB, embedding: GB / 2, head: GB / 2);
        var plan = Plan(model, silos, new PlanOptions { Headroom = 0, KvTokens = 0, Stages = 2 });
        Assert.Equal(2, plan.Stages.Count);
        Assert.Equal("a", plan.Stages[0].SiloId);
        string text = plan.Describe();
        Assert.Contains("ms a step", text);
        Assert.Contains("predicted at batch 1: step ", text);

        var four = Plan(model, silos, new PlanOptions { Headroom = 0, KvTokens = 0, Stages = 4 }); // several stages on one silo
        Assert.Equal(4, four.Stages.Count);
        Assert.Equal(4, four.Prediction!.StageSeconds.Count);
        Assert.Equal(four.Prediction.StageSeconds, StagePlanner.Predict(model, silos, four, new PlanOptions { Headroom = 0, KvTokens = 0 })!.StageSeconds);
    }

    [Fact]
    public void A_silo_without_a_calibration_falls_back_to_the_advertised_speeds()
    {
        // --speed skips the calibration; the others' calibrated speed (reference layer steps a second) compares with it.
        var measured = Calibrated(10e9);
        SiloCapacity[] silos =
        [
            new("measured", "cpu", 80 * GB, Calibration: measured),
            new("typed", "cpu", 80 * GB, Speed: measured.Speed * 3),
        ];
        var plan = StagePlanner.Plan(TenLayers, silos, new PlanOptions { Stages = 2 });
        Assert.Null(plan.Prediction);
        Assert.Equal("typed", plan.Stages[0].SiloId);
        Assert.InRange(plan.Stages[0].LayerCount, 7, 8);
        Assert.Null(StagePlanner.Predict(TenLayers, silos, plan, new PlanOptions()));
    }

    [Fact]
    public void More_silos_than_the_search_takes_are_planned_over_the_fastest()
    {
        // 12 silos of 24 GB for a ~100 GB model: the search takes the 10 fastest, and the two slowest are left out.
        var model = Llama70B(1_200_000_000);
        var silos = Enumerable.Range(0, 12).Select(i => new SiloCapacity($"silo-{i:D2}", "cuda:0", 24 * GB, Calibration: Calibrated((20 + i) * 1e9))).ToArray();
        var options = new PlanOptions { KvTokens = 8192 };
        var plan = StagePlanner.Plan(model, silos, options);
        Valid(plan, model, silos, options);
        Assert.NotNull(plan.Prediction);
        Assert.DoesNotContain("silo-00", plan.Silos);
        Assert.DoesNotContain("silo-01", plan.Silos);
    }

    [Fact]
    public void Bad_calibrations_are_refused_by_name()
    {
        var bad = new SiloCapacity("odd", "cpu", 8 * GB, Calibration: new SiloCalibration(0, 1, 1, 1, 1));
        var e = Assert.Throws<ArgumentException>(() => StagePlanner.Plan(TenLayers, [bad], new PlanOptions()));
        Assert.Contains("'odd'", e.Message);
        Assert.Contains("bandwidth", e.Message);
        Assert.Throws<ArgumentException>(() => StagePlanner.Plan(TenLayers, [new("a", "cpu", 80 * GB)], new PlanOptions { Batch = 0 }));
        Assert.Throws<ArgumentException>(() => StagePlanner.Plan(TenLayers, [new("a", "cpu", 80 * GB)], new PlanOptions { HopSeconds = -1 }));
    }

    /// <summary>A calibration whose predictions are exactly: bytes / bandwidth + rows x FLOPs / FLOP rate + a cost per layer.</summary>
    internal static SiloCalibration Calibrated(double bytesPerSecond, double flopsPerSecond = double.PositiveInfinity, double secondsPerLayer = 0)
    {
        const long layerBytes = 100_000_000, layerFlops = 50_000_000;
        double read = layerBytes / bytesPerSecond + secondsPerLayer, row = layerFlops / flopsPerSecond;
        return new SiloCalibration(bytesPerSecond, layerBytes, layerFlops, read + row, read + SiloCalibration.BigBatch * row);
    }
}
