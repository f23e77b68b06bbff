using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Strata.Client;
using Strata.Contracts;
using Strata.Contracts.Security;
using Strata.Gateway;
using Strata.Hosting;

namespace Strata.Benchmarks;

/// <summary>
/// What the HTTP gateway, mutual TLS and tracing cost. Starts three clusters of silo processes side by side (one
/// ONNX Runtime thread each, localhost clustering): plain; mutual TLS (a fresh development CA); tracing on at a 1%
/// sample with OTLP/HTTP export to a sink in this process. It deploys the package on each and runs a gateway in this
/// process over the plain one. At each concurrency it alternates rounds of four configurations, so machine noise hits
/// them alike: N streams through the Orleans client on the plain cluster, the same N streams as streaming
/// completions through the gateway's HTTP API, N streams on the TLS cluster, and N on the traced one. Greedy, the
/// same prompt, the same token counts everywhere. Reports output tok/s and TTFT p50 and the ratios to the first.
/// </summary>
internal static class OverheadBenchmark
{
    private const string Model = "bench";
    private const string Key = "sk-bench";

    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string store = Path.GetFullPath(a.Get("--store") ?? throw new ArgumentException("--store (model store folder) is required"));
        string package = a.Get("--package") ?? throw new ArgumentException("--package (name inside the store) is required");
        string silo = a.Get("--silo") ?? throw new ArgumentException("--silo (path to strata-silo.dll) is required");
        var o = new Settings(store, package, silo, a.Int("--silos", 2), a.Int("--stages", 2), a.Int("--tokens", 64), a.Int("--rounds", 3),
            a.Ints("--concurrency", [1, 16]), a.Get("--json"));
        return RunAsync(o).GetAwaiter().GetResult();
    }

    private sealed record Settings(string Store, string Package, string SiloDll, int Silos, int Stages, int Tokens, int Rounds, int[] Concurrency, string? Json);

    /// <summary>One batch of streams: output tokens over the wall time of the batch, and each stream's TTFT.</summary>
    private sealed record Batch(double TokensPerSecond, double[] TtftMs, int Tokens);

    private static async Task<int> RunAsync(Settings o)
    {
        string certs = Path.Combine(Path.GetTempPath(), "strata-bench-certs-" + Guid.NewGuid().ToString("N")[..8]);
        CertificateAuthority.Create(certs);
        var processes = new List<Process>();
        try
        {
            int maxSessions = Math.Max(2, o.Concurrency.Max());
            await using var sink = await TraceReceiver.Start(body =>
            {
                Interlocked.Increment(ref TraceBatches);
                Interlocked.Add(ref TraceBytes, body.Length);
            });
            string sinkUrl = sink.Url;
            var (plainPorts, plain) = await StartCluster(o, "bench-plain", [], processes);
            var (tlsPorts, _) = await StartCluster(o, "bench-tls", ["--tls", certs], processes);
            var (tracedPorts, _) = await StartCluster(o, "bench-traced", ["--otlp-endpoint", sinkUrl, "--trace-sample", "0.01"], processes,
                new Dictionary<string, string> { ["STRATA__Telemetry__OtlpProtocol"] = "http" });
            await using var plainClient = await StrataClient.ConnectAsync(null, plainPorts, "bench-plain");
            await using var tlsClient = await StrataClient.ConnectAsync(null, tlsPorts, "bench-tls", ClusterTls.Load(certs, ClusterRole.Admin));
            await using var tracedClient = await StrataClient.ConnectAsync(null, tracedPorts, "bench-traced");
            foreach (var client in new[] { plainClient, tlsClient, tracedClient })
            {
                var status = await client.DeployAsync(Model, new DeployRequest(o.Package, o.Stages, MaxContext: 256, MaxSessions: maxSessions),
                    timeout: TimeSpan.FromMinutes(5));
                Console.WriteLine($"deployed: " + string.Join("; ", status.Stages.Select(s => $"[{s.FirstLayer},{s.EndLayer}) on {s.Silo}")));
            }
            Console.WriteLine($"clusters: plain, mutual TLS and traced (1%), {o.Silos} silo processes each ({plain}), {o.Stages} stages, {o.Tokens} tokens per stream");

            await using var gateway = await StartGateway(plainClient);
            string url = gateway.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(5) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);

            var results = new List<object>();
            foreach (int streams in o.Concurrency)
            {
                var runs = new[] { new List<Batch>(), new List<Batch>(), new List<Batch>(), new List<Batch>() };
                for (int round = -1; round < o.Rounds; round++) // round -1 warms up
                {
                    var batches = new[]
                    {
                        await Orleans(plainClient, streams, o.Tokens, $"p{streams}-{round}"),
                        await Http(http, streams, o.Tokens),
                        await Orleans(tlsClient, streams, o.Tokens, $"t{streams}-{round}"),
                        await Orleans(tracedClient, streams, o.Tokens, $"o{streams}-{round}"),
                    };
                    if (batches.Select(b => b.Tokens).Distinct().Count() != 1)
                        throw new InvalidOperationException($"the configurations made different token counts: {string.Join(", ", batches.Select(b => b.Tokens))}");
                    if (round < 0) continue;
                    for (int c = 0; c < runs.Length; c++) runs[c].Add(batches[c]);
                }
                double[] tps = runs.Select(r => Stats.Median(r.Select(b => b.TokensPerSecond).ToArray())).ToArray();
                double[] ttft = runs.Select(r => Stats.Median(r.SelectMany(b => b.TtftMs).ToArray())).ToArray();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{streams,2} streams: Orleans client {tps[0]:F1} tok/s (TTFT p50 {ttft[0]:F1} ms) | gateway HTTP {tps[1]:F1} tok/s (TTFT p50 {ttft[1]:F1} ms) " +
                    $"= {tps[1] / tps[0]:F3}x, TTFT {ttft[1] - ttft[0]:+0.0;-0.0} ms | mutual TLS {tps[2]:F1} tok/s (TTFT p50 {ttft[2]:F1} ms) = {tps[2] / tps[0]:F3}x" +
                    $" | traced 1% {tps[3]:F1} tok/s = {tps[3] / tps[0]:F3}x"));
                results.Add(new
                {
                    streams,
                    orleans_tokens_per_second = tps[0], gateway_tokens_per_second = tps[1], tls_tokens_per_second = tps[2],
                    traced_tokens_per_second = tps[3],
                    gateway_ratio = tps[1] / tps[0], tls_ratio = tps[2] / tps[0], traced_ratio = tps[3] / tps[0],
                    orleans_ttft_p50_ms = ttft[0], gateway_ttft_p50_ms = ttft[1], tls_ttft_p50_ms = ttft[2],
                    gateway_ttft_extra_ms = ttft[1] - ttft[0],
                    samples = runs.Select(r => r.Select(b => b.TokensPerSecond).ToArray()).ToArray(),
                });
            }
            Console.WriteLine($"trace sink received {TraceBatches} OTLP export(s), {TraceBytes} bytes");
            if (o.Json is not null)
                await File.WriteAllTextAsync(o.Json, JsonSerializer.Serialize(new
                {
                    o.Silos, o.Stages, o.Tokens, o.Rounds, package = o.Package, results,
                }, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
            return 0;
        }
        finally
        {
            SiloProcess.StopAll(processes);
            try { Directory.Delete(certs, recursive: true); } catch (IOException) { }
        }
    }

    private static string Prompt => "Once upon a time there was a little robot who lived in a quiet town by the sea";

    /// <summary>Runs <paramref name="streams"/> streams at once; each returns its TTFT (ms from its own start, on the
    /// batch's clock) and its output tokens.</summary>
    private static async Task<Batch> Streams(int streams, Func<int, Stopwatch, Task<(double Ttft, int Tokens)>> stream)
    {
        var clock = Stopwatch.StartNew();
        var done = await Task.WhenAll(Enumerable.Range(0, streams).Select(i => stream(i, clock)));
        double wall = clock.Elapsed.TotalSeconds;
        int total = done.Sum(d => d.Tokens);
        return new Batch(total / wall, done.Select(d => d.Ttft).ToArray(), total);
    }

    private static Task<Batch> Orleans(StrataClient client, int streams, int tokens, string prefix) => Streams(streams, async (i, clock) =>
    {
        var request = new GenerateRequest { Model = Model, Prompt = Prompt, MaxNewTokens = tokens };
        double? ttft = null;
        int count = 0;
        var start = clock.Elapsed;
        await foreach (var chunk in client.GenerateAsync($"{prefix}-{i}", request))
        {
            if (ttft is null && chunk.Text.Length > 0) ttft = (clock.Elapsed - start).TotalMilliseconds;
            count += chunk.TokenIds.Length;
        }
        await client.Orleans.GetGrain<ISessionGrain>($"{prefix}-{i}").Close();
        return (ttft ?? double.NaN, count);
    });

    private static Task<Batch> Http(HttpClient http, int streams, int tokens)
    {
        string body = JsonSerializer.Serialize(new
        {
            model = Model, prompt = Prompt, max_tokens = tokens, temperature = 0, stream = true, stream_options = new { include_usage = true },
        });
        return Streams(streams, async (_, clock) =>
        {
            var start = clock.Elapsed;
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            double? ttft = null;
            int count = -1;
            while (await reader.ReadLineAsync() is string line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
                using var chunk = JsonDocument.Parse(line.AsMemory(6));
                var root = chunk.RootElement;
                if (root.TryGetProperty("error", out var error)) throw new InvalidOperationException($"gateway error: {error}");
                if (ttft is null && root.GetProperty("choices") is { ValueKind: JsonValueKind.Array } choices && choices.GetArrayLength() > 0
                    && choices[0].GetProperty("text").GetString() is { Length: > 0 })
                    ttft = (clock.Elapsed - start).TotalMilliseconds;
                if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                    count = usage.GetProperty("completion_tokens").GetInt32();
            }
            if (count < 0) throw new InvalidOperationException("the stream carried no usage chunk");
            return (ttft ?? double.NaN, count);
        });
    }

    private static async Task<WebApplication> StartGateway(StrataClient client)
    {
        var builder = GatewayApp.CreateBuilder([]);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:Keys:0:Name"] = "bench", ["Gateway:Keys:0:Sha256"] = ApiKeyOptions.Hash(Key),
            ["Gateway:Keys:0:RequestsPerSecond"] = "10000", ["Gateway:Keys:0:ConcurrentStreams"] = "1000",
            ["Gateway:Keys:0:TokensPerMinute"] = "1000000000",
        });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = GatewayApp.Build(builder, client);
        await app.StartAsync();
        return app;
    }

    private static long TraceBatches, TraceBytes;

    private static async Task<(int[] Gateways, string Shape)> StartCluster(Settings o, string clusterId, string[] extra, List<Process> processes,
        Dictionary<string, string>? environment = null)
    {
        int[] ports = FreePorts.Take(2 * o.Silos);
        var gateways = new List<int>();
        for (int i = 0; i < o.Silos; i++)
        {
            var args = new List<string>
            {
                o.SiloDll, "--silo-port", $"{ports[2 * i]}", "--gateway-port", $"{ports[2 * i + 1]}", "--primary-port", $"{ports[0]}",
                "--cluster-id", clusterId, "--model-store", o.Store, "--memory", "4GB", "--threads", "1", "--name", $"{clusterId}-{i}",
            };
            args.AddRange(extra);
            processes.Add(await SiloProcess.Start(args, $"{clusterId}-{i}", environment));
            gateways.Add(ports[2 * i + 1]);
        }
        return (gateways.ToArray(), "one ONNX Runtime thread each");
    }
}
