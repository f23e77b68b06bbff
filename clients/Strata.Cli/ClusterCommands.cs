using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Cli;

/// <summary><c>strata cluster deploy|status</c>: operate a running cluster.</summary>
internal static class ClusterCommands
{
    public static Command Create(CliOutput output) =>
        new("cluster", "Operate a running cluster: deploy, scale, drain, show silos and stages.") { Deploy(output), Status(output), Scale(output), Drain(output) };

    private static int? ParseReplicas(string text) =>
        text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? null
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int r) && r is >= 1 and <= 64 ? r
        : throw new CliUsageException($"--replicas '{text}' is not valid: give a number of shards per stage (1 to 64) or auto");

    private static Command Scale(CliOutput output)
    {
        var model = new Option<string>("--model") { Description = "The deployed model's name", Required = true };
        var replicas = new Option<string>("--replicas") { Description = "Shards per stage, each on its own silo, or auto", Required = true };
        var flags = new ClusterFlags();
        var cmd = new Command("scale", "Add or remove replicas of every stage of a model while sessions stream.") { model, replicas };
        flags.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            int? count = ParseReplicas(parse.GetValue(replicas)!);
            await using var connection = await ClusterConnection.ConnectAsync(flags.Get(parse), ct);
            output.Err.WriteLine($"scaling {parse.GetValue(model)} to {(count?.ToString(CultureInfo.InvariantCulture) ?? "auto")} replica(s) per stage...");
            var status = await connection.Client.ScaleAsync(parse.GetValue(model)!, count);
            PrintModel(output.Out, status, await SiloNames(connection.Client));
            return 0;
        });
        return cmd;
    }

    private static Command Drain(CliOutput output)
    {
        var silo = new Argument<string>("silo") { Description = "The silo's name (--name) or address" };
        var flags = new ClusterFlags();
        var cmd = new Command("drain", "Move every stage off a silo (replacements load first, sessions replay there) and report when it is empty.") { silo };
        flags.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            await using var connection = await ClusterConnection.ConnectAsync(flags.Get(parse), ct);
            output.Err.WriteLine($"draining {parse.GetValue(silo)}: placing replacements, then moving its sessions...");
            var report = await connection.Client.DrainAsync(parse.GetValue(silo)!);
            output.Out.WriteLine(report.ShardsLeft == 0
                ? $"silo {report.Silo} drained: {report.ShardsMoved} shard(s) of {report.Models.Count} model(s) moved, {report.SessionsMoved} running session(s) with them; it holds no stage"
                : $"silo {report.Silo}: {report.ShardsMoved} shard(s) moved, {report.ShardsLeft} left (see the silo's log)");
            return report.ShardsLeft == 0 ? 0 : 2;
        });
        return cmd;
    }

    private static Command Deploy(CliOutput output)
    {
        var package = new Option<string>("--model")
        {
            Description = "Model package folder: absolute, or relative to each silo's model store", Required = true,
        };
        var stages = new Option<string>("--stages") { Description = "Number of stages, or auto (the fewest that fit)", DefaultValueFactory = _ => "auto" };
        var name = new Option<string?>("--name") { Description = "Name to deploy under (default: the package folder's name)" };
        var maxContext = new Option<int>("--max-context") { Description = "KV positions per session (prompt plus generated tokens)", DefaultValueFactory = _ => 1024 };
        var maxSessions = new Option<int>("--max-sessions") { Description = "Sessions each stage holds KV for at once", DefaultValueFactory = _ => 8 };
        var queue = new Option<int?>("--admission-queue") { Description = "Sessions that may wait for a KV slot at each stage (default: the silo's, 256)" };
        var wait = new Option<double?>("--admission-wait") { Description = "Seconds a session waits for a KV slot before it is refused (default: the silo's, 60)" };
        var replicas = new Option<string>("--replicas")
        {
            Description = "Shards per stage, each on its own silo, or auto (as many as spare capacity allows)", DefaultValueFactory = _ => "1",
        };
        var kvDtype = new Option<string?>("--kv-dtype")
        {
            Description = "KV cache element type: fp16 (half the KV memory, twice the sessions in the same budget) or fp32 (default: each silo's precision)",
        };
        var dryRun = new Option<bool>("--dry-run")
        {
            Description = "Print the plan and its predicted step time (from the silos' calibrations) without loading anything",
        };
        var flags = new ClusterFlags();
        var cmd = new Command("deploy", "Deploy a model package across the cluster's silos and wait until every stage is loaded.")
        {
            package, stages, name, maxContext, maxSessions, queue, wait, replicas, kvDtype, dryRun,
        };
        flags.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string path = parse.GetValue(package)!;
            string stagesText = parse.GetValue(stages)!;
            int? stageCount = stagesText.Equals("auto", StringComparison.OrdinalIgnoreCase) ? null
                : int.TryParse(stagesText, NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k >= 1 ? k
                : throw new CliUsageException($"--stages '{stagesText}' is not valid: give a number of stages (1 or more) or auto");
            string model = parse.GetValue(name) ?? DefaultName(path);
            int context = parse.GetValue(maxContext), sessions = parse.GetValue(maxSessions);
            if (context < 1) throw new CliUsageException($"--max-context must be at least 1, got {context}");
            if (sessions < 1) throw new CliUsageException($"--max-sessions must be at least 1, got {sessions}");
            if (parse.GetValue(queue) is < 0) throw new CliUsageException($"--admission-queue must be at least 0, got {parse.GetValue(queue)}");
            if (parse.GetValue(wait) is double w && !(w >= 0 && w <= 300))
                throw new CliUsageException($"--admission-wait must be between 0 and 300 seconds, got {w}");
            var admissionWait = parse.GetValue(wait) is double seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
            int? replicaCount = ParseReplicas(parse.GetValue(replicas)!);
            string? kv = parse.GetValue(kvDtype)?.ToLowerInvariant();
            if (kv is not (null or "fp16" or "fp32")) throw new CliUsageException($"--kv-dtype must be fp16 or fp32, got '{parse.GetValue(kvDtype)}'");

            await using var connection = await ClusterConnection.ConnectAsync(flags.Get(parse), ct);
            var client = connection.Client;
            var request = new DeployRequest(path, stageCount, context, sessions, parse.GetValue(queue), admissionWait, replicaCount, kv);
            if (parse.GetValue(dryRun))
            {
                var plan = await client.Orleans.GetGrain<IModelGrain>(model).PlanDeploy(request);
                ClusterDryRun.Print(output.Out, plan, await SiloNames(client));
                return 0;
            }
            var bar = new ProgressBar(output.Err, $"deploy {model}", !Console.IsErrorRedirected);
            var status = await client.DeployAsync(model, request,
                new Progress(s => bar.Report(s.Stages.Count == 0 ? 0 : s.Stages.Count(x => x.State == DeploymentState.Ready) / (double)s.Stages.Count,
                    s.Stages.FirstOrDefault(x => x.State == DeploymentState.Loading) is { } loading ? $"stage {loading.Index} loading" : null)),
                cancellation: ct);
            bar.Report(1);
            PrintModel(output.Out, status, await SiloNames(client));
            return 0;
        });
        return cmd;
    }

    private static Command Status(CliOutput output)
    {
        var models = new Option<string[]>("--model") { Description = "A deployed model's name (repeatable)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: silos and models" };
        var flags = new ClusterFlags();
        var cmd = new Command("status", "Show the cluster's silos and, for each model named, its stages.") { models, json };
        flags.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            var target = flags.Get(parse);
            await using var connection = await ClusterConnection.ConnectAsync(target, ct);
            var client = connection.Client;
            // Until a lost silo is declared dead, the silo list can be unreadable (its directory partition is gone)
            // while the models still answer: show what can be read rather than nothing.
            IReadOnlyList<(string Silo, string Name, string Status)> silos = [];
            string? silosError = null;
            try { silos = await client.GetSilosAsync(); }
            catch (Exception e) when (e is OrleansException or TimeoutException) { silosError = e.Message.Split('\n', 2)[0]; }
            var names = parse.GetValue(models) ?? [];
            var statuses = new List<ModelStatus>();
            foreach (string name in names) statuses.Add(await client.GetModelStatusAsync(name));
            var siloNames = silos.ToDictionary(s => s.Silo, s => s.Name, StringComparer.Ordinal);

            if (parse.GetValue(json))
            {
                var o = new JsonObject
                {
                    ["silos"] = new JsonArray(silos.Select(s => (JsonNode)new JsonObject
                    {
                        ["address"] = s.Silo, ["name"] = s.Name, ["status"] = Snake(s.Status),
                    }).ToArray()),
                    ["silos_error"] = silosError,
                    ["models"] = new JsonArray(statuses.Select(m => (JsonNode)ModelJson(m, siloNames)).ToArray()),
                };
                output.Out.WriteLine(o.ToJsonString(GenerateCommand.JsonOptions));
                return 0;
            }

            output.Out.WriteLine(silosError is null
                ? $"cluster at {target}: {silos.Count} silo(s)"
                : $"cluster at {target}: silo list unavailable ({silosError})");
            foreach (var s in silos.OrderBy(s => s.Name, StringComparer.Ordinal))
                output.Out.WriteLine($"  {s.Name,-12} {s.Silo,-36} {Snake(s.Status)}");
            if (statuses.Count == 0)
                output.Out.WriteLine("name a model to see its stages: strata cluster status --model NAME");
            foreach (var m in statuses) PrintModel(output.Out, m, siloNames);
            return 0;
        });
        return cmd;
    }

    /// <summary>The silos' names by address, to show names beside stages.</summary>
    internal static async Task<IReadOnlyDictionary<string, string>> SiloNames(StrataClient client) =>
        (await client.GetSilosAsync()).ToDictionary(s => s.Silo, s => s.Name, StringComparer.Ordinal);

    /// <summary>A model's state and its stages as a table.</summary>
    internal static void PrintModel(TextWriter w, ModelStatus m, IReadOnlyDictionary<string, string> siloNames)
    {
        if (m.State == DeploymentState.NotDeployed)
        {
            w.WriteLine($"model {m.Model}: not deployed (strata cluster deploy --model PKG --name {m.Model})");
            return;
        }
        w.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"model {m.Model}: {Snake(m.State)}, version {m.Version}, {m.Stages.Select(s => s.Index).Distinct().Count()} stage(s), " +
            $"{m.Stages.Count} shard(s), package {m.PackagePath}, max context {m.MaxContext}"));
        if (m.Error is not null) w.WriteLine($"  error: {m.Error}");
        w.WriteLine($"  {"stage",-7}{"layers",-11}{"silo",-14}{"device",-8}{"state",-9}{"sessions",-10}{"waiting",-9}{"weights",-11}kv");
        foreach (var s in m.Stages)
        {
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {$"{s.Index}.{s.Replica}",-7}{$"[{s.FirstLayer}, {s.EndLayer})",-11}{siloNames.GetValueOrDefault(s.Silo, s.Silo),-14}{s.Device,-8}" +
                $"{Snake(s.State),-9}{$"{s.ActiveSessions}/{s.Slots}",-10}{s.WaitingSessions,-9}{FormatBytes(s.WeightBytes),-11}{FormatBytes(s.KvBytes)}"));
            if (s.Error is not null && m.Error is null) w.WriteLine($"    error: {s.Error}");
        }
    }

    private static JsonObject ModelJson(ModelStatus m, IReadOnlyDictionary<string, string> siloNames) => new()
    {
        ["model"] = m.Model,
        ["state"] = Snake(m.State),
        ["error"] = m.Error,
        ["package"] = m.PackagePath,
        ["max_context"] = m.MaxContext,
        ["version"] = m.Version,
        ["stages"] = new JsonArray(m.Stages.Select(s => (JsonNode)new JsonObject
        {
            ["index"] = s.Index,
            ["replica"] = s.Replica,
            ["first_layer"] = s.FirstLayer,
            ["end_layer"] = s.EndLayer,
            ["silo"] = s.Silo,
            ["silo_name"] = siloNames.GetValueOrDefault(s.Silo),
            ["device"] = s.Device,
            ["state"] = Snake(s.State),
            ["error"] = s.Error,
            ["active_sessions"] = s.ActiveSessions,
            ["slots"] = s.Slots,
            ["waiting_sessions"] = s.WaitingSessions,
            ["queued_steps"] = s.QueuedSteps,
            ["weight_bytes"] = s.WeightBytes,
            ["kv_bytes"] = s.KvBytes,
            ["shard"] = s.ShardKey,
        }).ToArray()),
    };

    /// <summary>NotDeployed -> not_deployed, Ready -> ready: how states read in text and JSON.</summary>
    internal static string Snake<T>(T value) where T : notnull
    {
        string name = value.ToString()!;
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(name[i]));
        }
        return sb.ToString();
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):F1} GB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):F1} MB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KB"),
    };

    private static string DefaultName(string packagePath)
    {
        string name = Path.GetFileName(packagePath.TrimEnd('/', Path.DirectorySeparatorChar));
        return name.Length > 0 ? name : throw new CliUsageException($"--model '{packagePath}' has no folder name to deploy under: give --name");
    }

    private sealed class Progress(Action<ModelStatus> report) : IProgress<ModelStatus>
    {
        public void Report(ModelStatus value) => report(value);
    }
}
