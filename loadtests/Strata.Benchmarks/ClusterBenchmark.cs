using System.Diagnostics;
using System.Text.Json;
using Strata.Client;
using Strata.Contracts;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;

namespace Strata.Benchmarks;

/// <summary>
/// Single-session decode through the cluster against the same stages back to back in one process. Starts N silo
/// processes (localhost clustering, one ONNX Runtime thread each), deploys the package over K stages, and
/// alternates rounds: one cluster session, one local pipeline run, so noise hits both alike.
/// </summary>
internal static class ClusterBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string store = Path.GetFullPath(a.Get("--store") ?? throw new ArgumentException("--store (model store folder) is required"));
        string package = a.Get("--package") ?? throw new ArgumentException("--package (name inside the store) is required");
        string silo = a.Get("--silo") ?? throw new ArgumentException("--silo (path to strata-silo.dll) is required");
        int silos = a.Int("--silos", 2), stages = a.Int("--stages", 4), tokens = a.Int("--tokens", 32), rounds = a.Int("--rounds", 5);
        return RunAsync(store, package, silo, silos, stages, tokens, rounds, a.Get("--json")).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string store, string package, string siloDll, int siloCount, int stages, int tokens, int rounds, string? json)
    {
        var processes = new List<Process>();
        try
        {
            int[] ports = FreePorts.Take(2 * siloCount);
            int primary = ports[0];
            var gateways = new List<int>();
            for (int i = 0; i < siloCount; i++)
            {
                int siloPort = ports[2 * i], gateway = ports[2 * i + 1];
                gateways.Add(gateway);
                processes.Add(await StartSilo(siloDll, siloPort, gateway, primary, store));
            }
            await using var client = await StrataClient.ConnectAsync(gatewayPorts: gateways.ToArray());
            var status = await client.DeployAsync("bench", new DeployRequest(package, stages, MaxContext: 256, MaxSessions: 2), timeout: TimeSpan.FromMinutes(5));
            Console.WriteLine($"cluster: {siloCount} silo processes, {stages} stages: " +
                string.Join("; ", status.Stages.Select(s => $"[{s.FirstLayer},{s.EndLayer}) on {s.Silo}")));

            using var loaded = ModelLoader.Open(Path.Combine(store, package));
            using var local = LocalPipeline.Load(loaded.Config, loaded.Tensors, stages, new EngineOptions { IntraOpThreads = 1, MaxContext = 256 });
            int[] prompt = Enumerable.Range(0, 16).Select(i => 3 + i * 7 % (loaded.Config.VocabSize - 3)).ToArray();

            var clusterTps = new List<double>();
            var localTps = new List<double>();
            for (int round = -1; round < rounds; round++)
            {
                double c = await ClusterDecode(client, $"bench-{round}", prompt, tokens);
                double l = LocalDecode(local, prompt, tokens);
                if (round < 0) continue; // warm-up
                clusterTps.Add(c);
                localTps.Add(l);
            }
            var (chainMs, computeMs) = await ChainProbe(client, prompt, tokens);
            Console.WriteLine($"direct chain probe (client -> stage 0 -> ... -> stage {stages - 1}, no session): " +
                $"{chainMs:F1} ms per step, of which stage compute {computeMs:F1} ms; the rest {chainMs - computeMs:F2} ms is calls and queues");
            double cm = Stats.Median(clusterTps), lm = Stats.Median(localTps);
            double extraMs = 1000 / cm - 1000 / lm;
            int hops = stages + 1; // session -> stage 0 -> ... -> stage K-1, result back along the chain
            Console.WriteLine($"decode tokens/s (median of {rounds}): cluster {cm:F2}, local {lm:F2}, ratio {cm / lm:F3}");
            Console.WriteLine($"step time: cluster {1000 / cm:F1} ms, local {1000 / lm:F1} ms; cluster overhead {extraMs:F2} ms per token, {extraMs / hops:F3} ms per hop ({hops} hops)");
            if (json is not null)
                File.WriteAllText(json, JsonSerializer.Serialize(new
                {
                    silos = siloCount, stages, tokens, rounds, cluster_tokens_per_second = cm, local_tokens_per_second = lm,
                    ratio = cm / lm, overhead_ms_per_token = extraMs, overhead_ms_per_hop = extraMs / hops, cluster_samples = clusterTps, local_samples = localTps,
                }, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        finally
        {
            SiloProcess.StopAll(processes);
        }
    }

    private static async Task<double> ClusterDecode(StrataClient client, string session, int[] prompt, int tokens)
    {
        var request = new GenerateRequest { Model = "bench", PromptIds = prompt, MaxNewTokens = tokens + 1, IgnoreEos = true };
        Stopwatch? clock = null;
        int seen = 0;
        await foreach (var chunk in client.GenerateAsync(session, request))
        {
            seen += chunk.TokenIds.Length;
            if (clock is null) { clock = Stopwatch.StartNew(); seen = 0; } // time from the first token: decode only
        }
        await client.Orleans.GetGrain<ISessionGrain>(session).ReleaseKv();
        return seen / clock!.Elapsed.TotalSeconds;
    }

    /// <summary>Steps the shard chain directly from the client: wall time per step against the stages' own compute
    /// time (reported by each stage), which splits the cluster's overhead into the chain and the session/stream.</summary>
    private static async Task<(double WallMs, double ComputeMs)> ChainProbe(StrataClient client, int[] prompt, int tokens)
    {
        var route = await client.Orleans.GetGrain<IModelGrain>("bench").GetRoute();
        var shards = route.ShardKeys.Select(k => client.Orleans.GetGrain<IShardGrain>(k)).ToArray();
        foreach (var s in shards) await s.Reserve("probe");
        try
        {
            var sampling = new SamplingSpec();
            var r = await shards[0].Step(new StepRequest("probe", 0, prompt.Length, prompt, null, "", sampling, [], Route: route.ShardKeys));
            var wall = new List<double>();
            var compute = new List<double>();
            for (int i = 0; i < tokens; i++)
            {
                var clock = Stopwatch.StartNew();
                r = await shards[0].Step(new StepRequest("probe", prompt.Length + i, 1, [r.Token], null, "", sampling, [], Route: route.ShardKeys));
                wall.Add(clock.Elapsed.TotalMilliseconds);
                compute.Add(r.StageMilliseconds.Sum());
            }
            return (Stats.Median(wall), Stats.Median(compute));
        }
        finally
        {
            foreach (var s in shards) await s.Release("probe");
        }
    }

    private static double LocalDecode(LocalPipeline pipeline, int[] prompt, int tokens)
    {
        using var seq = pipeline.NewSequence();
        int next = Sampler.ArgMax(seq.Forward(prompt));
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < tokens; i++) next = Sampler.ArgMax(seq.Forward([next]));
        return tokens / clock.Elapsed.TotalSeconds;
    }

    private static Task<Process> StartSilo(string dll, int siloPort, int gatewayPort, int primary, string store) =>
        SiloProcess.Start([dll, "--silo-port", $"{siloPort}", "--gateway-port", $"{gatewayPort}", "--primary-port", $"{primary}",
            "--model-store", store, "--memory", "4GB", "--threads", "1", "--name", $"bench-{siloPort}"], $"silo {siloPort}");
}
