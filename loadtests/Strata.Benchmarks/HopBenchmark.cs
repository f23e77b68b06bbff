using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Benchmarks;

/// <summary>
/// Where a decode step's time goes, from the traces: silo processes (one ONNX Runtime thread each, localhost
/// clustering) trace every request (--trace-sample 1) and export over OTLP/HTTP to a receiver in this process, which
/// decodes the spans. One session streams several requests; for each decode step the session's <c>session.step</c>
/// span and every stage's <c>stage.step</c> span inside it give, on the machine's one clock: the session's call to
/// stage 0, each stage's queue wait and compute, each forward to the next stage, each return, and the return to the
/// session. Reports the mean and median of each part, and the step's time beyond compute.
/// </summary>
internal static class HopBenchmark
{
    private const string Model = "hops";

    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string store = Path.GetFullPath(a.Get("--store") ?? throw new ArgumentException("--store (model store folder) is required"));
        string package = a.Get("--package") ?? throw new ArgumentException("--package (name inside the store) is required");
        string silo = a.Get("--silo") ?? throw new ArgumentException("--silo (path to strata-silo.dll) is required");
        return RunAsync(store, package, silo, a.Int("--stages", 2), a.Int("--requests", 4), a.Int("--tokens", 96), a.Get("--json")).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string store, string package, string siloDll, int stages, int requests, int tokens, string? json)
    {
        var spans = new ConcurrentQueue<OtlpSpan>();
        await using var sink = await TraceReceiver.Start(body => { foreach (var span in OtlpSpans.Read(body)) spans.Enqueue(span); });
        string sinkUrl = sink.Url;
        var processes = new List<System.Diagnostics.Process>();
        try
        {
            int[] ports = FreePorts.Take(2 * stages);
            for (int i = 0; i < stages; i++)
                processes.Add(await SiloProcess.Start(
                [
                    siloDll, "--silo-port", $"{ports[2 * i]}", "--gateway-port", $"{ports[2 * i + 1]}", "--primary-port", $"{ports[0]}",
                    "--cluster-id", "bench-hops", "--model-store", store, "--memory", "4GB", "--threads", "1", "--name", $"bench-hops-{i}",
                    "--otlp-endpoint", sinkUrl, "--trace-sample", "1",
                ], $"bench-hops-{i}", new Dictionary<string, string> { ["STRATA__Telemetry__OtlpProtocol"] = "http" }));
            await using var client = await StrataClient.ConnectAsync(null, Enumerable.Range(0, stages).Select(i => ports[2 * i + 1]).ToArray(), "bench-hops");
            var status = await client.DeployAsync(Model, new DeployRequest(package, stages, MaxContext: 256, MaxSessions: 2), timeout: TimeSpan.FromMinutes(5));
            Console.WriteLine("deployed: " + string.Join("; ", status.Stages.Select(s => $"stage {s.Index} [{s.FirstLayer},{s.EndLayer}) on {s.Silo}")));

            await Stream(client, "warm", 16);
            ulong from = UnixNs();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            int generated = 0;
            for (int r = 0; r < requests; r++) generated += await Stream(client, $"hops-{r}", tokens);
            double seconds = clock.Elapsed.TotalSeconds;
            ulong to = UnixNs();

            // The silos export every few seconds: wait until nothing new has come for a while.
            for (int seen = -1; seen != spans.Count;)
            {
                seen = spans.Count;
                await Task.Delay(TimeSpan.FromSeconds(7));
            }
            var all = spans.ToArray();
            var steps = all.Where(s => s.Name == "session.step" && s.StartNs >= from && s.EndNs <= to && s.Number("strata.tokens") == 1).ToList();
            var stageSpans = all.Where(s => s.Name == "stage.step" && s.StartNs >= from && s.EndNs <= to).ToList();
            var parts = new Dictionary<string, List<double>>(StringComparer.Ordinal);
            void Add(string part, double ms) => (parts.TryGetValue(part, out var l) ? l : parts[part] = []).Add(ms);
            int matched = 0;
            foreach (var step in steps)
            {
                var inside = stageSpans.Where(s => s.TraceId == step.TraceId && s.StartNs >= step.StartNs && s.EndNs <= step.EndNs)
                    .GroupBy(s => (int)s.Number("strata.stage")).ToDictionary(g => g.Key, g => g.First());
                if (inside.Count != stages) continue;
                matched++;
                var ordered = Enumerable.Range(0, stages).Select(i => inside[i]).ToArray();
                Add("step (session)", step.DurationMs);
                Add("session -> stage 0", (ordered[0].StartNs - step.StartNs) / 1e6);
                double compute = 0;
                for (int i = 0; i < stages; i++)
                {
                    var s = ordered[i];
                    double queue = s.Number("strata.queue_ms"), run = s.Number("strata.compute_ms");
                    compute += run;
                    Add($"stage {i} queue", queue);
                    Add($"stage {i} compute", run);
                    if (i + 1 < stages)
                    {
                        var next = ordered[i + 1];
                        double ready = s.StartNs / 1e6 + queue + run;
                        Add($"stage {i} -> stage {i + 1}", next.StartNs / 1e6 - ready);
                        Add($"stage {i + 1} -> stage {i} (return)", (s.EndNs - next.EndNs) / 1e6);
                    }
                }
                Add($"stage 0 -> session (return)", (step.EndNs - ordered[0].EndNs) / 1e6);
                Add("beyond compute", step.DurationMs - compute);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{requests} requests x {tokens} tokens, 1 session at a time: {generated / seconds:F1} tok/s with every request traced; " +
                $"{steps.Count} decode steps traced, {matched} with every stage's span ({all.Length} spans received)"));
            Console.WriteLine($"{"part of a decode step",-32} {"mean ms",9} {"p50 ms",9}");
            var rows = new List<object>();
            foreach (var (part, values) in parts)
            {
                double mean = values.Average(), p50 = Stats.Median(values);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{part,-32} {mean,9:F3} {p50,9:F3}"));
                rows.Add(new { part, mean_ms = mean, p50_ms = p50, samples = values.Count });
            }
            if (json is not null)
                await File.WriteAllTextAsync(json, JsonSerializer.Serialize(new { stages, requests, tokens, tokens_per_second = generated / seconds, steps = matched, parts = rows },
                    new JsonSerializerOptions { WriteIndented = true }));
            return matched > 0 ? 0 : 1;
        }
        finally
        {
            SiloProcess.StopAll(processes);
        }
    }

    private static ulong UnixNs() => (ulong)(DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100;

    private static async Task<int> Stream(StrataClient client, string session, int tokens)
    {
        int count = 0;
        var request = new GenerateRequest { Model = Model, Prompt = "Once upon a time there was a little robot", MaxNewTokens = tokens, IgnoreEos = true };
        await foreach (var chunk in client.GenerateAsync(session, request)) count += chunk.TokenIds.Length;
        await client.Orleans.GetGrain<ISessionGrain>(session).Close();
        return count;
    }
}
