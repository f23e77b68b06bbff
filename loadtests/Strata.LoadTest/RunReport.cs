using System.Globalization;

namespace Strata.LoadTest;

/// <summary>The report of a run or a sweep: setup, results with goodput, latency percentiles, errors, charts.</summary>
internal static class RunReport
{
    private static string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);

    public static ReportContent Content(IReadOnlyList<LoadReport> runs)
    {
        var first = runs[0];
        var o = first.Options;
        var cfg = first.Shape.Package?.Config;
        var setup = new List<IReadOnlyList<string>>
        {
            new[] { "model", first.Model },
        };
        if (cfg is not null)
            setup.Add(["model shape", $"{cfg.NumLayers} layers, hidden {cfg.HiddenSize}, vocab {cfg.VocabSize}, {first.Shape.Package!.DType}"]);
        setup.Add(["cluster", $"{first.Shape.Target}, {first.Shape.Silos} silos, {first.Shape.Status.Stages.Count} stages, max context {first.Shape.Status.MaxContext}"]);
        foreach (var s in first.Shape.Status.Stages)
            setup.Add([$"stage {s.Index}", $"layers [{s.FirstLayer}, {s.EndLayer}) on {s.Silo} ({s.Device}, {s.Slots} slots)"]);
        setup.Add(["arrivals", runs.Count > 1
            ? $"closed loop, sweep over concurrency {string.Join(", ", runs.Select(r => r.Concurrency))}"
            : o.Arrivals]);
        setup.Add([runs.Count > 1 ? "requests per level" : "requests", o.Requests.ToString(CultureInfo.InvariantCulture)]);
        setup.Add(["prompt tokens", $"{o.PromptTokens} (random ids, seed {o.Seed})"]);
        setup.Add(["max new tokens", $"{o.MaxNewTokens} (EOS ignored)"]);
        setup.Add(["SLO (goodput targets)", o.Slo.Describe()]);
        setup.Add(["percentiles", "exact, linear interpolation between ranks (numpy's default)"]);

        string[] columns = ["metric", .. runs.Select(Charts.Label)];
        var results = new List<IReadOnlyList<string>>
        {
            Row("completed", runs, r => r.Completed.ToString(CultureInfo.InvariantCulture)),
            Row("failed", runs, r => r.Failed.ToString(CultureInfo.InvariantCulture)),
            Row("duration (s)", runs, r => F(r.DurationSeconds)),
            Row("total output tokens", runs, r => r.OutputTokens.ToString(CultureInfo.InvariantCulture)),
            Row("output throughput (tok/s)", runs, r => F(r.OutputTokensPerSecond)),
            Row("request throughput (req/s)", runs, r => F(r.RequestsPerSecond)),
        };
        if (o.Slo.Any)
        {
            results.Add(Row("goodput (req/s)", runs, r => F(r.Goodput!.RequestsPerSecond)));
            results.Add(Row("requests meeting every SLO", runs, r => $"{r.Goodput!.Met}/{r.Goodput.Sent} ({F(r.Goodput.Fraction * 100, "F1")}%)"));
        }

        var latency = new List<IReadOnlyList<string>>();
        foreach (var (name, pick) in new (string, Func<LoadReport, LatencyStats>)[]
                 { ("TTFT", r => r.Ttft), ("TPOT", r => r.Tpot), ("ITL", r => r.Itl), ("max ITL per request", r => r.MaxItl), ("E2E", r => r.E2E) })
        {
            latency.Add(Row($"{name} p50", runs, r => F(pick(r).P50)));
            latency.Add(Row($"{name} p90", runs, r => F(pick(r).P90)));
            latency.Add(Row($"{name} p99", runs, r => F(pick(r).P99)));
            latency.Add(Row($"{name} mean", runs, r => F(pick(r).Mean)));
            if (name.StartsWith("max", StringComparison.Ordinal)) latency.Add(Row("max ITL, largest", runs, r => F(r.MaxItl.Max)));
        }

        var tables = new List<Table>
        {
            new("Setup", ["setting", "value"], setup, Text: true),
            new("Results", columns, results),
            new("Latency (ms)", columns, latency),
        };
        var errors = runs.SelectMany(r => r.Errors.Select(e => (Run: Charts.Label(r), e.Error, e.Count))).ToArray();
        if (errors.Length > 0)
            tables.Add(new("Errors", ["run", "error", "count"],
                errors.Take(20).Select(e => (IReadOnlyList<string>)[e.Run, e.Error, e.Count.ToString(CultureInfo.InvariantCulture)]).ToArray(), Text: true));

        string when = DateTimeOffset.FromUnixTimeMilliseconds((long)first.Run.StartedUnixMs).ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture);
        var notes = new List<string> { $"Run {first.Run.RunId}, started {when}. Metrics as vLLM's benchmark defines them." };
        return new ReportContent($"Strata load test: {first.Model}", notes, tables);
    }

    private static string[] Row(string name, IReadOnlyList<LoadReport> runs, Func<LoadReport, string> cell) =>
        [name, .. runs.Select(cell)];
}
