using Strata.Testing;
using System.Text.Json.Nodes;
using Strata.Client;
using Strata.Contracts;
using Strata.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Strata.EndToEnd.Tests;

/// <summary>
/// A cluster made of real processes: redis-server, three strata-silo processes joined through it, and the strata CLI
/// as the client. Each test starts its own cluster and stops every process it started.
/// </summary>
public sealed class ClusterProcessTests(ITestOutputHelper output)
{
    internal const string Package = "tiny3";
    private static readonly TimeSpan CliTimeout = TimeSpan.FromSeconds(90);

    [RedisFact]
    public async Task Three_silo_processes_serve_a_three_stage_model_exactly_like_local_generation()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);

        var deploy = await cluster.StrataAsync(CliTimeout, "cluster", "deploy", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--stages", "3");
        Check(deploy.ExitCode == 0, $"deploy failed: {deploy}", cluster);

        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model is not ready: {model.ToJsonString()}", cluster);
        var stages = model["stages"]!.AsArray();
        Check(stages.Count == 3, $"expected 3 stages: {model.ToJsonString()}", cluster);
        var silos = stages.Select(s => (string)s!["silo"]!).ToArray();
        Check(silos.Distinct().Count() == 3, $"expected the 3 stages on 3 distinct silos: {model.ToJsonString()}", cluster);
        Check(silos.All(a => cluster.Silos.Any(s => s.Is(a))), $"a stage is on a silo this test did not start: {model.ToJsonString()}", cluster);

        var remote = await cluster.StrataAsync(CliTimeout, "generate", "--cluster", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--prompt", "hello", "--max-new-tokens", "8", "--json");
        Check(remote.ExitCode == 0, $"cluster generate failed: {remote}", cluster);
        var remoteJson = Json(remote, cluster);
        int generated = remoteJson["generated_ids"]!.AsArray().Count;
        Check(generated is >= 1 and <= 8, $"expected 1..8 generated ids: {remote.Out}", cluster);

        var local = await cluster.StrataAsync(CliTimeout, "generate", "--model", Path.Combine(cluster.Store, Package),
            "--prompt", "hello", "--max-new-tokens", "8", "--json", "--stages", "3", "--threads", "1");
        Check(local.ExitCode == 0, $"local generate failed: {local}", cluster);
        Check(JsonNode.DeepEquals(Json(local, cluster), remoteJson),
            $"cluster and local generation differ:\ncluster: {remote.Out}local:   {local.Out}", cluster);

        // Every silo serves its stage's metrics in Prometheus text; the session's silo also counts the tokens.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var scrapes = new List<string>();
        foreach (var silo in cluster.Silos)
        {
            string text = await http.GetStringAsync($"http://localhost:{silo.MetricsPort}/metrics");
            scrapes.Add(text);
            foreach (var metric in new[] { "strata_stage_batch_size", "strata_stage_step_seconds", "strata_kv_cache_usage_perc", "strata_num_requests_running" })
                Check(text.Contains(metric, StringComparison.Ordinal), $"{silo.Name} does not export {metric}:\n{text}", cluster);
        }
        Check(scrapes.Any(t => t.Contains("strata_generation_tokens_total", StringComparison.Ordinal)
                               && t.Contains("strata_time_to_first_token_seconds", StringComparison.Ordinal)),
            $"no silo exports the session metrics:\n{string.Join("\n", scrapes)}", cluster);
    }

    /// <summary>Deploys the test package over <paramref name="stages"/> stages with room for 512 positions.</summary>
    internal static async Task Deploy(ProcessCluster cluster, int stages)
    {
        var deploy = await cluster.StrataAsync(CliTimeout, "cluster", "deploy", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--stages", stages.ToString(System.Globalization.CultureInfo.InvariantCulture), "--max-context", "512");
        Check(deploy.ExitCode == 0, $"deploy failed: {deploy}", cluster);
    }

    /// <summary>Streams one turn through a client of this test process; <paramref name="onToken"/> sees the count
    /// of tokens received so far.</summary>
    internal static async Task<List<int>> Stream(StrataClient client, string session, int tokens, Func<int, Task>? onToken = null,
        int[]? promptIds = null)
    {
        var ids = new List<int>();
        await foreach (var chunk in client.GenerateAsync(session, new GenerateRequest
                       {
                           Model = Package, Prompt = "Once upon a time", PromptIds = promptIds, MaxNewTokens = tokens, IgnoreEos = true,
                       }))
        {
            ids.AddRange(chunk.TokenIds);
            if (onToken is not null) await onToken(ids.Count);
        }
        return ids;
    }

    [RedisFact]
    public async Task Kill_9_of_a_stage_silo_under_a_stream_leaves_the_stream_exact_and_the_model_serving_on_the_survivors()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        await Deploy(cluster, stages: 3);
        var stages = (await Status(cluster))["stages"]!.AsArray();
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 400;
        var reference = await Stream(client, "reference", tokens);
        Check(reference.Count == tokens, $"the fault-free run made {reference.Count} tokens", cluster);

        // Kill a silo that holds a stage but neither the model grain nor the new session (which lives beside stage 0).
        string modelHost = await ModelGrainSilo(cluster);
        var victimStage = stages.Last(s => (int)s!["index"]! > 0 && !SameSilo((string)s!["silo"]!, modelHost))!;
        var victim = cluster.Silos.Single(s => s.Is((string)victimStage["silo"]!));
        output.WriteLine($"model grain on {modelHost}; killing {victim.Name}, stage {(int)victimStage["index"]!}, after 8 tokens");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? killedAt = null, resumedAt = null;
        var streamed = await Stream(client, "victim", tokens, n =>
        {
            if (n == 8) { victim.Process.Kill(); killedAt = clock.Elapsed; }
            else if (killedAt is not null && resumedAt is null) resumedAt = clock.Elapsed;
            return Task.CompletedTask;
        });
        output.WriteLine($"stall after the kill: {(resumedAt - killedAt)?.TotalMilliseconds:F0} ms");
        Check(killedAt is not null, "the stream ended before the kill", cluster);
        Check(streamed.SequenceEqual(reference), $"the stream through the kill differs from the fault-free run:\n{string.Join(",", streamed)}\n{string.Join(",", reference)}", cluster);

        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model should serve on the survivors: {model.ToJsonString()}", cluster);
        Check(model["stages"]!.AsArray().All(s => !victim.Is((string)s!["silo"]!)), $"a stage is still on the killed silo: {model.ToJsonString()}", cluster);
        Check((long)model["version"]! > 1, $"the re-plan should be a new version: {model.ToJsonString()}", cluster);
        var after = await Stream(client, "after", tokens);
        Check(after.SequenceEqual(reference), "a new session on the re-planned model differs from the fault-free run", cluster);
        foreach (var s in cluster.Silos.Where(s => s != victim))
            Check(!s.Process.HasExited, $"{s.Name} exited after {victim.Name} was killed", cluster);

        // During prefill: a 400-token prompt, and the silo of the last stage killed as soon as the turn is sent.
        int[] longPrompt = Enumerable.Range(0, 400).Select(i => 3 + i * 7 % 200).ToArray();
        var prefillReference = await Stream(client, "prefill-reference", 32, promptIds: longPrompt);
        var last = (await Status(cluster))["stages"]!.AsArray().MaxBy(s => (int)s!["index"]!)!;
        var second = cluster.Silos.Single(s => s.Is((string)last["silo"]!));
        var during = Stream(client, "prefill", 32, promptIds: longPrompt);
        second.Process.Kill();
        var prefilled = await during;
        Check(prefilled.SequenceEqual(prefillReference), $"the turn whose prefill lost {second.Name} differs from the fault-free run", cluster);
    }

    [RedisFact]
    public async Task Kill_9_of_the_model_grains_silo_loses_no_deployment()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        await Deploy(cluster, stages: 2);
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        var reference = await Stream(client, "reference", 64);

        string modelHost = await ModelGrainSilo(cluster);
        var victim = cluster.Silos.Single(s => s.Is(modelHost));
        output.WriteLine($"killing {victim.Name}, host of the model grain");
        victim.Process.Kill();

        // The deployment is in Redis: once the cluster has settled, the model grain answers from another silo, still
        // deployed, and any stage the victim held is re-planned onto the survivors.
        var fresh = await Stream(client, "fresh", 64);
        Check(fresh.SequenceEqual(reference), "a session after the kill differs from the fault-free run", cluster);
        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model should still be deployed and ready: {model.ToJsonString()}", cluster);
        Check(!SameSilo(await ModelGrainSilo(cluster), modelHost), "the model grain should live on a surviving silo", cluster);
    }

    [RedisFact]
    public async Task Kill_9_of_the_sessions_silo_under_a_stream_is_resumed_by_the_client_exactly()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        await Deploy(cluster, stages: 2);
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 400;
        var reference = await Stream(client, "reference", tokens);

        // A conversation with a completed turn first, so that the broken turn has stored history before it.
        var first = await Stream(client, "victim", 16);
        string sessionHost = await GrainLocation.SiloOf(client.Orleans, client.Orleans.GetGrain<ISessionGrain>("victim"))
            ?? throw new InvalidOperationException("the session 'victim' has no activation");
        var victim = cluster.Silos.Single(s => s.Is(sessionHost));
        output.WriteLine($"session on {victim.Name}; killing it during the second turn");
        var second = await Stream(client, "victim", tokens, n =>
        {
            if (n == 8) victim.Process.Kill();
            return Task.CompletedTask;
        });

        // The same two turns on a session that no fault touched.
        var calmFirst = await Stream(client, "calm", 16);
        var calmSecond = await Stream(client, "calm", tokens);
        Check(first.SequenceEqual(calmFirst), "the first turns differ", cluster);
        Check(second.SequenceEqual(calmSecond), $"the resumed turn differs from the unbroken one:\n{string.Join(",", second)}\n{string.Join(",", calmSecond)}", cluster);
    }

    [RedisFact]
    public async Task A_stream_runs_through_a_Redis_restart_and_the_cluster_serves_after_it()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 2, Package, layers: 3);
        await Deploy(cluster, stages: 2);
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 400;
        var reference = await Stream(client, "reference", tokens);

        // Redis goes away for two seconds in the middle of a stream: steps never touch it, the session's save at the
        // end of the turn may find it back or not (it is retried next turn), and membership carries on from memory.
        Task? restart = null;
        var streamed = await Stream(client, "through", tokens, n =>
        {
            if (n == 8) restart = cluster.RestartRedisAsync(TimeSpan.FromSeconds(2));
            return Task.CompletedTask;
        });
        Check(restart is not null, "the stream ended before Redis stopped", cluster);
        await restart!;
        Check(streamed.SequenceEqual(reference), "the stream through the Redis restart differs from the fault-free run", cluster);

        // After the restart: a fresh client finds the cluster through Redis, the deployment is still there, and a
        // new session and a second turn of the old one are served.
        await using var fresh = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        var after = await Stream(fresh, "after-restart", tokens);
        Check(after.SequenceEqual(reference), "a session after the Redis restart differs from the fault-free run", cluster);
        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model should still be deployed: {model.ToJsonString()}", cluster);
        foreach (var s in cluster.Silos) Check(!s.Process.HasExited, $"{s.Name} exited during the Redis restart", cluster);
    }

    [RedisFact]
    public async Task Sigterm_on_a_stage_silo_under_load_drains_it_every_stream_stays_exact_and_it_exits_0()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        await Deploy(cluster, stages: 2);
        var stages = (await Status(cluster))["stages"]!.AsArray();
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 400;
        var reference = await Stream(client, "reference", tokens);

        // Sessions live beside stage 0; stop the silo of stage 1 while four of them stream.
        var victim = cluster.Silos.Single(s => s.Is((string)stages.Single(x => (int)x!["index"]! == 1)!["silo"]!));
        var terminated = new TaskCompletionSource();
        var streams = Enumerable.Range(0, 4).Select(i => Stream(client, $"load-{i}", tokens, n =>
        {
            if (i == 0 && n == 8) { victim.Process.Terminate(); terminated.TrySetResult(); }
            return Task.CompletedTask;
        })).ToArray();
        var results = await Task.WhenAll(streams);
        Check(terminated.Task.IsCompleted, "the streams ended before SIGTERM", cluster);
        for (int i = 0; i < results.Length; i++)
            Check(results[i].SequenceEqual(reference), $"stream {i} differs from the fault-free run", cluster);
        int exit = await victim.Process.WaitForExitAsync(TimeSpan.FromSeconds(90));
        Check(exit == 0, $"{victim.Name} exited {exit} after SIGTERM", cluster);
        Check(victim.Process.StandardOutput.Contains("drained", StringComparison.Ordinal), $"{victim.Name} did not report its drain", cluster);
        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model should serve: {model.ToJsonString()}", cluster);
        Check(model["stages"]!.AsArray().All(s => !victim.Is((string)s!["silo"]!)), $"a stage is still on the stopped silo: {model.ToJsonString()}", cluster);
    }

    [RedisFact]
    public async Task Cluster_drain_empties_a_silo_under_load_and_scale_then_adds_replicas_elsewhere()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        await Deploy(cluster, stages: 2);
        var stages = (await Status(cluster))["stages"]!.AsArray();
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 400;
        var reference = await Stream(client, "reference", tokens);

        var victim = cluster.Silos.Single(s => s.Is((string)stages.Single(x => (int)x!["index"]! == 1)!["silo"]!));
        Task<CliResult>? drain = null;
        var streams = Enumerable.Range(0, 4).Select(i => Stream(client, $"load-{i}", tokens, n =>
        {
            if (i == 0 && n == 8) drain = cluster.StrataAsync(CliTimeout, "cluster", "drain", victim.Name, "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId);
            return Task.CompletedTask;
        })).ToArray();
        var results = await Task.WhenAll(streams);
        Check(drain is not null, "the streams ended before the drain", cluster);
        var drained = await drain!;
        Check(drained.ExitCode == 0 && drained.Out.Contains("holds no stage", StringComparison.Ordinal), $"drain failed: {drained}", cluster);
        for (int i = 0; i < results.Length; i++)
            Check(results[i].SequenceEqual(reference), $"stream {i} differs from the fault-free run", cluster);

        var scale = await cluster.StrataAsync(CliTimeout, "cluster", "scale", "--model", Package, "--replicas", "2", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId);
        Check(scale.ExitCode == 0, $"scale failed: {scale}", cluster);
        var model = await Status(cluster);
        var shards = model["stages"]!.AsArray();
        Check(shards.Count == 4 && shards.All(s => !victim.Is((string)s!["silo"]!)),
            $"with the drained silo left out, the two others hold both replicas of both stages: {model.ToJsonString()}", cluster);
        var after = await Stream(client, "after-scale", tokens);
        Check(after.SequenceEqual(reference), "a session after scaling differs from the fault-free run", cluster);
    }

    internal static async Task<JsonObject> Status(ProcessCluster cluster)
    {
        var status = await cluster.StrataAsync(CliTimeout, "cluster", "status", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--json");
        Check(status.ExitCode == 0, $"cluster status failed: {status}", cluster);
        var models = Json(status, cluster)["models"]?.AsArray();
        Check(models is { Count: 1 }, $"cluster status --model {Package} should list one model: {status.Out}", cluster);
        return models![0]!.AsObject();
    }

    /// <summary>Where the model grain lives, asked through an Orleans client of this test process.</summary>
    internal static async Task<string> ModelGrainSilo(ProcessCluster cluster)
    {
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        return await GrainLocation.SiloOf(client.Orleans, client.Orleans.GetGrain<IModelGrain>(Package)) ?? throw new InvalidOperationException($"the model grain '{Package}' has no activation");
    }

    private static bool SameSilo(string a, string b) => a.Split('@')[0] == b.Split('@')[0];

    private static JsonObject Json(CliResult result, ProcessCluster cluster)
    {
        try
        {
            return JsonNode.Parse(result.Out)!.AsObject();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or NullReferenceException)
        {
            Assert.Fail($"stdout is not one JSON object ({e.Message}): {result}\n{cluster.Logs()}");
            throw;
        }
    }

    internal static void Check(bool condition, string message, ProcessCluster cluster)
    {
        if (!condition) Assert.Fail($"{message}\n--- process logs\n{cluster.Logs()}");
    }
}
