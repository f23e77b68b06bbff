using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Models.Planning;

namespace Strata.Grains;

internal sealed partial class ModelGrain
{
    public async Task<DeployPlan> PlanDeploy(DeployRequest request)
    {
        Validate(request);
        var manifest = OpenManifest(request.PackagePath);
        var silos = await Candidates([]);
        var footprint = ModelFootprint.From(manifest, KvElementBytes, StageGraphBuilder.AttentionHeadDim(manifest.Config));
        // The options Deploy plans with.
        var planOptions = new PlanOptions { Stages = request.Stages, KvTokens = request.MaxContext * request.MaxSessions };
        StagePlan plan;
        try
        {
            plan = StagePlanner.Plan(footprint, silos, planOptions);
        }
        catch (PlanningException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, e.Message);
        }
        var p = plan.Prediction;
        return new DeployPlan(Model,
            plan.Stages.Select(s => new PlannedStageInfo(s.Index, s.FirstLayer, s.EndLayer, s.SiloId, s.WeightBytes, s.KvBytes, p?.StageSeconds[s.Index])).ToList(),
            planOptions.Batch, p?.StepSeconds, p?.TokenSeconds, plan.Describe(),
            silos.OrderBy(s => s.SiloId, StringComparer.Ordinal)
                .Select(s => $"{s}: " + (s.Calibration is { } c ? c.ToString() : s.Speed is double v ? $"speed {v} (given)" : "no calibration")).ToList());
    }
}
