using System.Globalization;

namespace Strata.Models.Planning;

/// <summary>What a plan's step should take, predicted from the silos' calibrations.</summary>
/// <param name="StageSeconds">Predicted step time of each stage at <paramref name="Batch"/> rows, in chain order.</param>
/// <param name="HopSeconds">What each hop between stages adds (<see cref="PlanOptions.HopSeconds"/>).</param>
/// <param name="Batch">Rows per step the prediction is for.</param>
public sealed record PlanPrediction(IReadOnlyList<double> StageSeconds, double HopSeconds, int Batch)
{
    /// <summary>The slowest stage's step time: under load, the pipeline runs one step per this.</summary>
    public double SlowestStageSeconds => StageSeconds.Count == 0 ? 0 : StageSeconds.Max();

    /// <summary>Seconds of hops a step makes between stages.</summary>
    public double HopsSeconds => HopSeconds * Math.Max(0, StageSeconds.Count - 1);

    /// <summary>What the planner minimises: the slowest stage's step time plus the hops.</summary>
    public double StepSeconds => SlowestStageSeconds + HopsSeconds;

    /// <summary>One step's trip through every stage and hop: the time per token a lone session sees.</summary>
    public double TokenSeconds => StageSeconds.Sum() + HopsSeconds;

    /// <summary>One line: <c>predicted at batch 1: step 12.3 ms (slowest stage 11.3 ms + hops 1.0 ms), token 20.1 ms</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"predicted at batch {Batch}: step {StepSeconds * 1e3:0.00} ms (slowest stage {SlowestStageSeconds * 1e3:0.00} ms + hops {HopsSeconds * 1e3:0.00} ms), " +
        $"token {TokenSeconds * 1e3:0.00} ms; stages {string.Join(", ", StageSeconds.Select(s => (s * 1e3).ToString("0.00", CultureInfo.InvariantCulture)))} ms");
}
