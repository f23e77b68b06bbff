using System.Globalization;

namespace Strata.LoadTest;

/// <summary>A flag the user got wrong: reported without a stack trace, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The command line of <c>strata-loadtest</c>.</summary>
internal sealed record LoadTestOptions
{
    public const string Usage = """
        usage: strata-loadtest [--concurrency N[,N...] | --rate R|inf] --requests N --prompt-tokens N --max-new-tokens N
                               --model NAME (--redis HOST:PORT | --gateway-port N[,N...] | --embedded --model-path DIR --stages K [--silos N])
                               [--vocab N] [--cluster-id ID] [--max-sessions N] [--json PATH [--per-request]] [--seed S] [--timeout SECONDS]
                               [--slo-ttft-ms MS] [--slo-tpot-ms MS] [--slo-e2e-ms MS] [--report DIR]
                               [--otlp-endpoint URL [--otlp-protocol grpc|http] [--trace-sample F]]
               strata-loadtest --compare A.json B.json [--report DIR]
          --concurrency N     closed loop: N clients, each sends its next request when its previous one ends (default 1);
                              a list (1,2,4,8) sweeps: one run of --requests per level, in the same process and cluster
          --rate R            open loop: Poisson arrivals at R requests/s (exponential gaps, seeded); 'inf' sends all at once
          --requests N        total requests (per level in a sweep; default 100)
          --prompt-tokens N   synthetic prompt of N random ids in [3, vocab), sent as PromptIds (default 32)
          --max-new-tokens N  tokens per request, EOS ignored (default 32)
          --vocab N           vocabulary size for the prompt ids when not embedded (default 256)
          --embedded          start a cluster in this process, deploy --model-path over --stages stages on --silos silos (default 2)
          --max-sessions N    sessions per stage when deploying embedded (default: the highest concurrency, or min(requests, 64) with --rate)
          --timeout SECONDS   per request (default 120)
          --per-request       the JSON also lists every request: its send time and chunk arrival times (unix ms)
          --slo-ttft-ms MS    goodput target: time to first token at most MS (likewise --slo-tpot-ms, --slo-e2e-ms);
                              goodput = completed requests per second that met every target given
          --report DIR        write DIR/report.md, DIR/report.html (charts embedded) and the charts as PNG files
          --compare A B       compare two --json results: key metrics side by side with B/A ratios
          --otlp-endpoint URL trace the requests from here (each request one trace: this client, the session, every stage),
                              exported over OTLP (gRPC, or --otlp-protocol http); --trace-sample F of them (default 1)
        """;

    public int? Concurrency { get; init; }
    /// <summary>The concurrency levels of a sweep (more than one); null for a single run.</summary>
    public int[]? Sweep { get; init; }
    public SloTargets Slo { get; init; } = SloTargets.None;
    /// <summary>Folder for report.md, report.html and the charts.</summary>
    public string? Report { get; init; }
    /// <summary>The two JSON results of <c>--compare</c>; null when running load.</summary>
    public string[]? Compare { get; init; }
    /// <summary>Requests per second; +infinity = all at once; null = closed loop.</summary>
    public double? Rate { get; init; }
    public int Requests { get; init; } = 100;
    public int PromptTokens { get; init; } = 32;
    public int MaxNewTokens { get; init; } = 32;
    public string? Model { get; init; }
    public string? Redis { get; init; }
    public int[]? GatewayPorts { get; init; }
    public string ClusterId { get; init; } = "strata";
    public bool Embedded { get; init; }
    public string? ModelPath { get; init; }
    public int? Stages { get; init; }
    public int Silos { get; init; } = 2;
    public int? MaxSessions { get; init; }
    public int Vocab { get; init; } = 256;
    public bool VocabGiven { get; init; }
    public string? Json { get; init; }
    /// <summary>Write every request's chunk arrival times into the JSON (wall clock), for fault benchmarks.</summary>
    public bool PerRequest { get; init; }
    public ulong Seed { get; init; } = 1;
    /// <summary>OTLP endpoint the load generator's own spans go to (the roots of the requests' traces); null = none.</summary>
    public string? OtlpEndpoint { get; init; }
    public string OtlpProtocol { get; init; } = "grpc";
    public double TraceSample { get; init; } = 1;
    public double TimeoutSeconds { get; init; } = 120;

    public bool ClosedLoop => Rate is null;
    public int Clients => Concurrency ?? 1;
    /// <summary>Every concurrency level to run, in the order given (one for a single closed-loop run).</summary>
    public IReadOnlyList<int> Levels => Sweep ?? [Clients];
    public string Arrivals => Rate is null ? $"closed loop, {Clients} concurrent clients"
        : double.IsPositiveInfinity(Rate.Value) ? "all at once (rate inf)"
        : string.Create(CultureInfo.InvariantCulture, $"Poisson, {Rate.Value:G} requests/s");

    public static LoadTestOptions Parse(IReadOnlyList<string> args)
    {
        var o = new LoadTestOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string flag = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new UsageException($"{flag} needs a value");
            int Int(int min) => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
                ? v : throw new UsageException($"{flag} needs an integer >= {min}, got '{args[i]}'");
            double Positive() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0 && double.IsFinite(v)
                ? v : throw new UsageException($"{flag} needs a positive number, got '{args[i]}'");
            o = flag switch
            {
                "--concurrency" => ParseLevels(o, flag, Value()),
                "--rate" => o with { Rate = ParseRate(Value()) },
                "--requests" => o with { Requests = Int(1) },
                "--prompt-tokens" => o with { PromptTokens = Int(1) },
                "--max-new-tokens" => o with { MaxNewTokens = Int(1) },
                "--model" => o with { Model = Value() },
                "--redis" => o with { Redis = Value() },
                "--gateway-port" => o with { GatewayPorts = ParsePorts(Value()) },
                "--cluster-id" => o with { ClusterId = Value() },
                "--embedded" => o with { Embedded = true },
                "--model-path" => o with { ModelPath = Value() },
                "--stages" => o with { Stages = Int(1) },
                "--silos" => o with { Silos = Int(1) },
                "--max-sessions" => o with { MaxSessions = Int(1) },
                "--vocab" => o with { Vocab = Int(4), VocabGiven = true },
                "--json" => o with { Json = Value() },
                "--per-request" => o with { PerRequest = true },
                "--seed" => o with { Seed = ulong.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong s) ? s : throw new UsageException($"--seed needs a non-negative integer, got '{args[i]}'") },
                "--timeout" => o with { TimeoutSeconds = Positive() },
                "--slo-ttft-ms" => o with { Slo = o.Slo with { TtftMs = Positive() } },
                "--slo-tpot-ms" => o with { Slo = o.Slo with { TpotMs = Positive() } },
                "--slo-e2e-ms" => o with { Slo = o.Slo with { E2EMs = Positive() } },
                "--report" => o with { Report = Value() },
                "--compare" => o with { Compare = [Value(), Value()] },
                "--otlp-endpoint" => o with { OtlpEndpoint = Value() },
                "--otlp-protocol" => o with { OtlpProtocol = Value() is "grpc" or "http" ? args[i] : throw new UsageException($"--otlp-protocol must be grpc or http, got '{args[i]}'") },
                "--trace-sample" => o with { TraceSample = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out double f) && f is >= 0 and <= 1 ? f : throw new UsageException($"--trace-sample needs a fraction from 0 to 1, got '{args[i]}'") },
                _ => throw new UsageException($"unknown flag '{flag}'"),
            };
        }
        if (o.Compare is not null)
        {
            bool onlyReport = args.Where(a => a.StartsWith("--", StringComparison.Ordinal)).All(a => a is "--compare" or "--report");
            return onlyReport ? o : throw new UsageException("--compare takes two JSON files and at most --report DIR, no other flags");
        }
        if (o.Concurrency is not null && o.Rate is not null) throw new UsageException("give --concurrency or --rate, not both");
        int targets = (o.Redis is null ? 0 : 1) + (o.GatewayPorts is null ? 0 : 1) + (o.Embedded ? 1 : 0);
        if (targets != 1) throw new UsageException("give exactly one target: --redis HOST:PORT, --gateway-port N or --embedded");
        if (o.Embedded && o.ModelPath is null) throw new UsageException("--embedded needs --model-path DIR");
        if (!o.Embedded && (o.ModelPath is not null || o.Stages is not null)) throw new UsageException("--model-path and --stages go with --embedded");
        if (!o.Embedded && o.Model is null) throw new UsageException("--model NAME is required against a running cluster");
        return o;
    }

    private static LoadTestOptions ParseLevels(LoadTestOptions o, string flag, string s)
    {
        var levels = s.Split(',').Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= 1
            ? v : throw new UsageException($"{flag} needs an integer >= 1 or a list of them (1,2,4,8), got '{s}'")).ToArray();
        if (levels.Distinct().Count() != levels.Length) throw new UsageException($"{flag} lists a level twice: '{s}'");
        return o with { Concurrency = levels[0], Sweep = levels.Length > 1 ? levels : null };
    }

    private static double ParseRate(string s)
    {
        if (s.Equals("inf", StringComparison.OrdinalIgnoreCase)) return double.PositiveInfinity;
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double r) && r > 0 && double.IsFinite(r)
            ? r : throw new UsageException($"--rate needs a positive number or 'inf', got '{s}'");
    }

    private static int[] ParsePorts(string s) => s.Split(',').Select(p =>
        int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v is > 0 and < 65536
            ? v : throw new UsageException($"--gateway-port needs port numbers, got '{s}'")).ToArray();
}
