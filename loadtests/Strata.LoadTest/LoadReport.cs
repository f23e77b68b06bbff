using System.Globalization;

namespace Strata.LoadTest;

/// <summary>The run's numbers, as a readable summary and as JSON (vLLM's metric names and definitions).</summary>
internal sealed class LoadReport
{
    private readonly LoadTestOptions _o;
    private readonly string _model;
    private readonly int _vocab;
    private readonly ClusterShape _shape;
    private readonly RunResult _run;

    public LoadReport(LoadTestOptions options, string model, int vocab, ClusterShape shape, RunResult run)
    {
        (_o, _model, _vocab, _shape, _run) = (options, model, vocab, shape, run);
        var ok = run.Requests.Where(r => r.Ok).ToArray();
        Completed = ok.Length;
        Failed = run.Requests.Count - ok.Length;
        OutputTokens = run.Requests.Sum(r => (long)r.OutputTokens);
        Ttft = LatencyStats.Of(ok.Select(r => r.TtftMs));
        Tpot = LatencyStats.Of(ok.Where(r => r.TpotMs is not null).Select(r => r.TpotMs!.Value));
        Itl = LatencyStats.Of(ok.SelectMany(r => r.ChunkMs.Zip(r.ChunkMs.Skip(1), (a, b) => b - a)));
        // The largest gap each request saw: a stall (failover, drain, a long prefill ahead) shows here, not in ITL.
        MaxItl = LatencyStats.Of(ok.Where(r => r.ChunkMs.Count > 1).Select(r => r.ChunkMs.Zip(r.ChunkMs.Skip(1), (a, b) => b - a).Max()));
        E2E = LatencyStats.Of(ok.Select(r => r.E2EMs));
        OutputLengths = LatencyStats.Of(ok.Select(r => (double)r.OutputTokens));
        Goodput = options.Slo.Any ? Goodput.Of(run.Requests, run.WallSeconds, options.Slo) : null;
        Errors = run.Requests.Where(r => !r.Ok).GroupBy(r => r.Error!).OrderByDescending(g => g.Count())
            .Select(g => (g.Key, g.Count())).ToArray();
    }

    public LoadTestOptions Options => _o;
    public string Model => _model;
    public ClusterShape Shape => _shape;
    public RunResult Run => _run;
    /// <summary>Concurrency of a closed-loop run; null with --rate.</summary>
    public int? Concurrency => _o.ClosedLoop ? _o.Clients : null;
    public int Completed { get; }
    public int Failed { get; }
    public long OutputTokens { get; }
    public double DurationSeconds => _run.WallSeconds;
    public double OutputTokensPerSecond => OutputTokens / Math.Max(1e-9, _run.WallSeconds);
    public double RequestsPerSecond => Completed / Math.Max(1e-9, _run.WallSeconds);
    public LatencyStats Ttft { get; }
    public LatencyStats Tpot { get; }
    public LatencyStats Itl { get; }
    public LatencyStats MaxItl { get; }
    public LatencyStats E2E { get; }
    public LatencyStats OutputLengths { get; }
    public IReadOnlyList<(string Error, int Count)> Errors { get; }
    /// <summary>Requests meeting every SLO given; null when none was.</summary>
    public Goodput? Goodput { get; }

    public void WriteSummary(TextWriter w)
    {
        var ci = CultureInfo.InvariantCulture;
        var cfg = _shape.Package?.Config;
        w.WriteLine("============ Strata load test ============");
        w.WriteLine(string.Create(ci, $"{"model",-28}{_model}"));
        if (cfg is not null)
            w.WriteLine(string.Create(ci, $"{"model shape",-28}{cfg.NumLayers} layers, hidden {cfg.HiddenSize}, vocab {cfg.VocabSize}, {_shape.Package!.DType}"));
        w.WriteLine(string.Create(ci, $"{"cluster",-28}{_shape.Target}, {_shape.Silos} silos, {_shape.Status.Stages.Count} stages, max context {_shape.Status.MaxContext}"));
        foreach (var s in _shape.Status.Stages)
            w.WriteLine(string.Create(ci, $"{"",-28}stage {s.Index} layers [{s.FirstLayer}, {s.EndLayer}) on {s.Silo} ({s.Device}, {s.Slots} slots)"));
        w.WriteLine(string.Create(ci, $"{"arrivals",-28}{_o.Arrivals}"));
        w.WriteLine(string.Create(ci, $"{"requests",-28}{_o.Requests}"));
        w.WriteLine(string.Create(ci, $"{"prompt tokens",-28}{_o.PromptTokens} (random ids in [3, {_vocab}), seed {_o.Seed})"));
        w.WriteLine(string.Create(ci, $"{"max new tokens",-28}{_o.MaxNewTokens} (EOS ignored)"));
        w.WriteLine(string.Create(ci, $"{"output tokens per request",-28}p50 {OutputLengths.P50:F0}, mean {OutputLengths.Mean:F1}"));
        w.WriteLine("------------------------------------------");
        w.WriteLine(string.Create(ci, $"{"completed",-28}{Completed}"));
        w.WriteLine(string.Create(ci, $"{"failed",-28}{Failed}"));
        foreach (var (error, count) in Errors.Take(5)) w.WriteLine(string.Create(ci, $"{"",-28}{count} x {error}"));
        w.WriteLine(string.Create(ci, $"{"duration (s)",-28}{DurationSeconds:F2}"));
        w.WriteLine(string.Create(ci, $"{"total output tokens",-28}{OutputTokens}"));
        w.WriteLine(string.Create(ci, $"{"request throughput (req/s)",-28}{RequestsPerSecond:F2}"));
        w.WriteLine(string.Create(ci, $"{"output throughput (tok/s)",-28}{OutputTokensPerSecond:F2}"));
        w.WriteLine(string.Create(ci, $"{"latency (ms)",-14}{"p50",10}{"p90",10}{"p99",10}{"mean",10}{"n",8}"));
        foreach (var (name, s) in new[] { ("ttft", Ttft), ("tpot", Tpot), ("itl", Itl), ("max itl", MaxItl), ("e2e", E2E) })
            w.WriteLine(string.Create(ci, $"{name,-14}{s.P50,10:F2}{s.P90,10:F2}{s.P99,10:F2}{s.Mean,10:F2}{s.Count,8}"));
        if (Goodput is { } g)
        {
            w.WriteLine(string.Create(ci, $"{"slo",-28}{_o.Slo.Describe()}"));
            w.WriteLine(string.Create(ci, $"{"goodput (req/s)",-28}{g.RequestsPerSecond:F2}"));
            w.WriteLine(string.Create(ci, $"{"meeting every slo",-28}{g.Met}/{g.Sent} ({g.Fraction * 100:F1}%)"));
        }
        w.WriteLine("==========================================");
        w.Flush();
    }

    private static Dictionary<string, object> Stats(LatencyStats s) => new()
    {
        ["p50"] = s.P50, ["p90"] = s.P90, ["p99"] = s.P99, ["mean"] = s.Mean, ["count"] = s.Count,
    };

    public Dictionary<string, object?> ToJson()
    {
        var cfg = _shape.Package?.Config;
        return new()
        {
            ["completed"] = Completed,
            ["failed"] = Failed,
            ["duration_s"] = DurationSeconds,
            ["total_output_tokens"] = OutputTokens,
            ["output_tokens_per_second"] = OutputTokensPerSecond,
            ["requests_per_second"] = RequestsPerSecond,
            ["ttft_ms"] = Stats(Ttft),
            ["tpot_ms"] = Stats(Tpot),
            ["itl_ms"] = Stats(Itl),
            ["max_itl_ms"] = new Dictionary<string, object> { ["p50"] = MaxItl.P50, ["p99"] = MaxItl.P99, ["max"] = MaxItl.Max, ["count"] = MaxItl.Count },
            ["e2e_ms"] = Stats(E2E),
            ["output_tokens_per_request"] = Stats(OutputLengths),
            ["slo"] = _o.Slo.Any ? new Dictionary<string, object?> { ["ttft_ms"] = _o.Slo.TtftMs, ["tpot_ms"] = _o.Slo.TpotMs, ["e2e_ms"] = _o.Slo.E2EMs } : null,
            ["goodput"] = Goodput is { } g
                ? new Dictionary<string, object> { ["requests_per_second"] = g.RequestsPerSecond, ["requests_meeting_slo"] = g.Met, ["fraction"] = g.Fraction }
                : null,
            ["percentiles"] = "linear interpolation (numpy default)",
            ["requests"] = _o.PerRequest
                ? _run.Requests.Select(r => new Dictionary<string, object?>
                {
                    ["sent_unix_ms"] = _run.StartedUnixMs + r.SentMs,
                    ["chunk_unix_ms"] = r.ChunkMs.Select(c => Math.Round(_run.StartedUnixMs + c, 1)).ToArray(),
                    ["chunk_tokens"] = r.ChunkTokens.ToArray(),
                    ["error"] = r.Error,
                }).ToArray()
                : null,
            ["errors"] = Errors.Select(e => new Dictionary<string, object> { ["error"] = e.Error, ["count"] = e.Count }).ToArray(),
            ["settings"] = new Dictionary<string, object?>
            {
                ["model"] = _model,
                ["arrivals"] = _o.ClosedLoop ? "closed_loop" : double.IsPositiveInfinity(_o.Rate!.Value) ? "inf" : "poisson",
                ["concurrency"] = _o.ClosedLoop ? _o.Clients : null,
                ["rate"] = _o.Rate is { } r && double.IsFinite(r) ? r : null,
                ["requests"] = _o.Requests,
                ["prompt_tokens"] = _o.PromptTokens,
                ["max_new_tokens"] = _o.MaxNewTokens,
                ["ignore_eos"] = true,
                ["vocab"] = _vocab,
                ["seed"] = _o.Seed,
                ["timeout_s"] = _o.TimeoutSeconds,
                ["run_id"] = _run.RunId,
            },
            ["cluster"] = new Dictionary<string, object?>
            {
                ["target"] = _shape.Target,
                ["silos"] = _shape.Silos,
                ["stages"] = _shape.Status.Stages.Count,
                ["max_context"] = _shape.Status.MaxContext,
                ["stage_placement"] = _shape.Status.Stages.Select(s => new Dictionary<string, object>
                {
                    ["index"] = s.Index, ["first_layer"] = s.FirstLayer, ["end_layer"] = s.EndLayer, ["silo"] = s.Silo,
                    ["device"] = s.Device, ["slots"] = s.Slots,
                }).ToArray(),
                ["layers"] = cfg?.NumLayers,
                ["hidden_size"] = cfg?.HiddenSize,
                ["dtype"] = _shape.Package?.DType.ToString(),
            },
        };
    }
}
