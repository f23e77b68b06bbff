using System.Globalization;
using Strata.Contracts;
using Strata.Models.Planning;

namespace Strata.Cli;

/// <summary><c>strata cluster deploy --dry-run</c>: how a plan reads on the command line.</summary>
internal static class ClusterDryRun
{
    /// <summary>Writes the plan: one line per stage with its predicted step time, then the prediction, then the
    /// silos it was made over with what each advertises.</summary>
    public static void Print(TextWriter w, DeployPlan plan, IReadOnlyDictionary<string, string> siloNames)
    {
        string Name(string silo) => siloNames.TryGetValue(silo, out var n) ? $"{n} ({silo})" : silo;
        w.WriteLine($"plan for {plan.Model} (dry run: nothing stored or loaded): {plan.Stages.Count} stage(s) over {plan.Stages.LastOrDefault()?.EndLayer ?? 0} layer(s)");
        foreach (var s in plan.Stages)
        {
            string predicted = s.PredictedSeconds is double t ? $", predicted {Ms(t)} ms a step" : "";
            w.WriteLine($"  stage {s.Index}: layers {s.FirstLayer}-{s.EndLayer - 1} ({s.EndLayer - s.FirstLayer}) on {Name(s.Silo)}, " +
                        $"weights {ByteSize.Format(s.WeightBytes)} + KV {ByteSize.Format(s.KvBytes)}{predicted}");
        }
        if (plan.StepSeconds is double step && plan.TokenSeconds is double token)
        {
            w.WriteLine($"predicted step time at batch {plan.Batch}: {Ms(step)} ms (slowest stage plus hops)");
            w.WriteLine($"predicted token time at batch {plan.Batch}: {Ms(token)} ms (every stage and hop in turn)");
        }
        else
        {
            w.WriteLine("no prediction: not every silo advertises a calibration (started with --speed or --calibrate false)");
        }
        w.WriteLine("silos:");
        foreach (string silo in plan.Silos) w.WriteLine($"  {silo}");
    }

    private static string Ms(double seconds) => (seconds * 1e3).ToString("0.000", CultureInfo.InvariantCulture);
}
