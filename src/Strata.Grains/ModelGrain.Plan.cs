using Strata.Contracts;

namespace Strata.Grains;

internal sealed partial class ModelGrain
{
    public async Task<DeployPlan> PlanDeploy(DeployRequest request)
    {
        var (_, silos, planOptions, plan) = await PlanFor(request);
        var p = plan.Prediction;
        return new DeployPlan(Model,
            plan.Stages.Select(s => new PlannedStageInfo(s.Index, s.FirstLayer, s.EndLayer, s.SiloId, s.WeightBytes, s.KvBytes, p?.StageSeconds[s.Index])).ToList(),
            planOptions.Batch, p?.StepSeconds, p?.TokenSeconds, plan.Describe(),
            silos.OrderBy(s => s.SiloId, StringComparer.Ordinal)
                .Select(s => $"{s}: " + (s.Calibration is { } c ? c.ToString() : s.Speed is double v ? $"speed {v} (given)" : "no calibration")).ToList());
    }
}
