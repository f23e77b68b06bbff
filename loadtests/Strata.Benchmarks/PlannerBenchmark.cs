using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Benchmarks;

/// <summary>
/// The planner's predictions against what the cluster does. For each deployment (a --threads setting per silo
/// process, e.g. 1,1 / 1,2 / 2,1), starts the silos (they calibrate at start-up), asks for the plan with a dry run,
/// deploys it, then steps the shard chain directly at batch 1: the wall time of a step through every stage against
/// the predicted token time (every stage and hop in turn), and each stage's own compute time against its predicted
/// step time. Silos are stopped between deployments so each calibrates afresh.
/// </summary>
internal static class PlannerBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string store = Path.GetFullPath(a.Get("--store") ?? throw new ArgumentException("--store (model store folder) is required"));
        string package = a.Get("--package") ?? throw new ArgumentException("--package (name inside the store) is required");
        string silo = a.Get("--silo") ?? throw new ArgumentException("--silo (path to strata-silo.dll) is required");
        var deployments = (a.Get("--deployments") ?? "1,1/1,2/2,1").Split('/', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => d.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray()).ToList();
        int steps = a.Int("--steps", 48), rounds = a.Int("--rounds", 3);
        return RunAsync(store, package, silo, deployments, steps, rounds, a.Get("--json")).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string store, string package, string siloDll, List<int[]> deployments, int steps, int rounds, string? json)
    {
        var results = new List<object>();
        foreach (var threads in deployments)
        {
            var processes = new List<Process>();
            try
            {
                int[] ports = FreePorts.Take(2 * threads.Length);
                for (int i = 0; i < threads.Length; i++)
                    processes.Add(await SiloProcess.Start([siloDll, "--silo-port", $"{ports[2 * i]}", "--gateway-port", $"{ports[2 * i + 1]}",
                        "--primary-port", $"{ports[0]}", "--model-store", store, "--memory", "4GB", "--threads", $"{threads[i]}",
                        "--name", $"planner-{i}-t{threads[i]}"], $"silo {i}"));
                await using var client = await StrataClient.ConnectAsync(gatewayPorts: Enumerable.Range(0, threads.Length).Select(i => ports[2 * i + 1]).ToArray());
                var names = (await client.GetSilosAsync()).ToDictionary(s => s.Silo, s => s.Name, StringComparer.Ordinal);
                var request = new DeployRequest(package, MaxContext: 256, MaxSessions: 2);
                var plan = await client.Orleans.GetGrain<IModelGrain>("bench").PlanDeploy(request);
                if (plan.TokenSeconds is not double predictedToken || plan.StepSeconds is not double predictedStep)
                    throw new InvalidOperationException("the plan has no prediction: a silo did not advertise a calibration");
                await client.DeployAsync("bench", request, timeout: TimeSpan.FromMinutes(5));

                var (wall, stageMs) = (new List<double>(), new List<double[]>());
                for (int round = -1; round < rounds; round++)
                {
                    var (w, s) = await ChainSteps(client, steps);
                    if (round < 0) continue; // warm-up
                    wall.Add(w);
                    stageMs.Add(s);
                }
                double measuredToken = Stats.Median(wall);
                var measuredStages = Enumerable.Range(0, plan.Stages.Count).Select(i => Stats.Median(stageMs.Select(s => s[i]).ToList())).ToArray();
                var predictedStages = plan.Stages.Select(s => s.PredictedSeconds!.Value * 1e3).ToArray();
                // The measured hop: what the step took beyond the stages' compute, over its calls (client -> stage 0 ->
                // ... -> last stage, and the answer back); the planner counts the hops between stages only.
                double hopMs = (measuredToken - measuredStages.Sum()) / (plan.Stages.Count + 1);
                double measuredStep = measuredStages.Max() + hopMs * (plan.Stages.Count - 1);
                string label = string.Join(",", threads);
                Console.WriteLine($"threads {label}: {plan.Stages.Count} stage(s): " + string.Join("; ", plan.Stages.Select((s, i) =>
                    $"[{s.FirstLayer},{s.EndLayer}) on {names.GetValueOrDefault(s.Silo, s.Silo)} predicted {predictedStages[i]:F2} ms, measured {measuredStages[i]:F2} ms ({Error(predictedStages[i], measuredStages[i])})")));
                Console.WriteLine($"threads {label}: token time predicted {predictedToken * 1e3:F2} ms, measured {measuredToken:F2} ms ({Error(predictedToken * 1e3, measuredToken)}); " +
                                  $"step (slowest stage + hops) predicted {predictedStep * 1e3:F2} ms, measured {measuredStep:F2} ms ({Error(predictedStep * 1e3, measuredStep)}); measured hop {hopMs:F2} ms");
                results.Add(new
                {
                    threads, stages = plan.Stages.Select((s, i) => new { s.FirstLayer, s.EndLayer, silo = names.GetValueOrDefault(s.Silo, s.Silo), predicted_ms = predictedStages[i], measured_ms = measuredStages[i] }),
                    predicted_token_ms = predictedToken * 1e3, measured_token_ms = measuredToken, token_error = (predictedToken * 1e3 - measuredToken) / measuredToken,
                    predicted_step_ms = predictedStep * 1e3, measured_step_ms = measuredStep, step_error = (predictedStep * 1e3 - measuredStep) / measuredStep, measured_hop_ms = hopMs,
                    silos = plan.Silos,
                });
            }
            finally
            {
                SiloProcess.StopAll(processes);
            }
        }
        if (json is not null) File.WriteAllText(json, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    private static string Error(double predicted, double measured) => $"{(predicted - measured) / measured * 100:+0.0;-0.0}%";

    /// <summary>Steps the chain directly at batch 1 (no session, no stream): median wall time per step, and each
    /// stage's median compute time as it reports it.</summary>
    private static async Task<(double WallMs, double[] StageMs)> ChainSteps(StrataClient client, int steps)
    {
        var route = await client.Orleans.GetGrain<IModelGrain>("bench").GetRoute();
        var shards = route.ShardKeys.Select(k => client.Orleans.GetGrain<IShardGrain>(k)).ToArray();
        foreach (var s in shards) await s.Reserve("planner-probe");
        try
        {
            int[] prompt = Enumerable.Range(0, 16).Select(i => 3 + i * 7).ToArray();
            var sampling = new SamplingSpec();
            var r = await shards[0].Step(new StepRequest("planner-probe", 0, prompt.Length, prompt, null, "", sampling, [], Route: route.ShardKeys));
            var wall = new List<double>();
            var compute = new List<double[]>();
            for (int i = 0; i < steps; i++)
            {
                var clock = Stopwatch.StartNew();
                r = await shards[0].Step(new StepRequest("planner-probe", prompt.Length + i, 1, [r.Token], null, "", sampling, [], Route: route.ShardKeys));
                wall.Add(clock.Elapsed.TotalMilliseconds);
                compute.Add(r.StageMilliseconds);
            }
            return (Stats.Median(wall), Enumerable.Range(0, shards.Length).Select(j => Stats.Median(compute.Select(c => c[j]).ToList())).ToArray());
        }
        finally
        {
            foreach (var s in shards) await s.Release("planner-probe");
        }
    }
}
