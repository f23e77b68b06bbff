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
    private const string Package = "tiny3";
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

    [RedisFact]
    public async Task Killing_a_silo_process_fails_the_model_with_a_message_naming_the_stage_and_silo_and_the_others_keep_running()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 3, Package, layers: 3);
        var deploy = await cluster.StrataAsync(CliTimeout, "cluster", "deploy", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--stages", "3");
        Check(deploy.ExitCode == 0, $"deploy failed: {deploy}", cluster);
        var stages = (await Status(cluster))["stages"]!.AsArray();

        // Every silo holds a stage; kill one that does not also hold the model grain, whose deployment record is not
        // persisted (losing it is a different failure: the model reads not_deployed).
        string modelHost = await ModelGrainSilo(cluster);
        var victimStage = stages.Last(s => !SameSilo((string)s!["silo"]!, modelHost))!;
        int stageIndex = (int)victimStage["index"]!;
        string victimAddress = (string)victimStage["silo"]!;
        var victim = cluster.Silos.Single(s => s.Is(victimAddress));
        output.WriteLine($"model grain on {modelHost}; killing {victim.Name} ({victimAddress}), stage {stageIndex}");
        victim.Process.Kill();

        // Until the others declare the victim dead, a status call can itself fail (a grain directory partition may
        // have lived on the victim): poll, bounded, until the model reads failed.
        var attempts = new List<CliResult>();
        JsonObject? model = null;
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(90);)
        {
            var (result, m) = await TryStatus(cluster);
            attempts.Add(result);
            if ((string?)m?["state"] == "failed")
            {
                model = m;
                break;
            }
        }
        Check(model is not null, $"the model should read failed after {victim.Name} was killed; status answered:\n" +
            string.Join("\n", attempts.Select(a => a.ToString())), cluster);
        string error = (string?)model!["error"] ?? "";
        Check(error.Contains($"stage {stageIndex}", StringComparison.Ordinal) && error.Contains($"127.0.0.1:{victim.SiloPort}", StringComparison.Ordinal),
            $"the error should name stage {stageIndex} and silo {victimAddress}: {model.ToJsonString()}", cluster);

        var generate = await cluster.StrataAsync(TimeSpan.FromSeconds(120), "generate", "--cluster", "--redis", cluster.Redis,
            "--cluster-id", cluster.ClusterId, "--model", Package, "--prompt", "hello", "--max-new-tokens", "8", "--json");
        Check(generate.ExitCode != 0 && generate.Err.Contains("error", StringComparison.OrdinalIgnoreCase),
            $"generate on a failed model should exit with an error: {generate}", cluster);

        foreach (var s in cluster.Silos.Where(s => s != victim))
            Check(!s.Process.HasExited, $"{s.Name} exited after {victim.Name} was killed", cluster);
    }

    /// <summary>Runs cluster status; the model's status when it answered, else null.</summary>
    private static async Task<(CliResult Result, JsonObject? Model)> TryStatus(ProcessCluster cluster)
    {
        var status = await cluster.StrataAsync(CliTimeout, "cluster", "status", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--json");
        if (status.ExitCode != 0) return (status, null);
        try
        {
            return (status, JsonNode.Parse(status.Out)?["models"]?.AsArray().SingleOrDefault()?.AsObject());
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException)
        {
            return (status, null);
        }
    }

    private static async Task<JsonObject> Status(ProcessCluster cluster)
    {
        var status = await cluster.StrataAsync(CliTimeout, "cluster", "status", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Package, "--json");
        Check(status.ExitCode == 0, $"cluster status failed: {status}", cluster);
        var models = Json(status, cluster)["models"]?.AsArray();
        Check(models is { Count: 1 }, $"cluster status --model {Package} should list one model: {status.Out}", cluster);
        return models![0]!.AsObject();
    }

    /// <summary>Where the model grain lives, asked through an Orleans client of this test process.</summary>
    private static async Task<string> ModelGrainSilo(ProcessCluster cluster)
    {
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        var address = await client.Orleans.GetGrain<IManagementGrain>(0).GetActivationAddress(client.Orleans.GetGrain<IModelGrain>(Package));
        return address?.ToParsableString() ?? throw new InvalidOperationException($"the model grain '{Package}' has no activation");
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

    private static void Check(bool condition, string message, ProcessCluster cluster)
    {
        if (!condition) Assert.Fail($"{message}\n--- process logs\n{cluster.Logs()}");
    }
}
