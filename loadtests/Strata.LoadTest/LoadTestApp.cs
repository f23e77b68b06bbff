using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Strata.Cli;
using Strata.Client;
using Strata.Contracts;
using Strata.Models.Packaging;

namespace Strata.LoadTest;

/// <summary>The load generator: connects (or starts an embedded cluster), fires the requests, prints the summary.</summary>
internal static class LoadTestApp
{
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, bool redrawProgress = false,
        CancellationToken cancellation = default)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.WriteLine(LoadTestOptions.Usage);
            return 0;
        }
        LoadTestOptions options;
        try
        {
            options = LoadTestOptions.Parse(args);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"strata-loadtest: {e.Message}");
            stderr.WriteLine(LoadTestOptions.Usage);
            return 2;
        }
        try
        {
            // Checked before a run, so that minutes of load are not measured for a report that cannot be written.
            if (options.Report is not null && File.Exists(options.Report))
                throw new UsageException($"--report {options.Report} is a file; give a folder (it is created if missing)");
            if (options.Compare is not null) return Compare.Run(options, stdout, stderr);
            using var tracing = options.OtlpEndpoint is string endpoint
                ? Strata.Hosting.StrataTracingSetup.StartClient("strata-loadtest", endpoint, options.TraceSample, options.OtlpProtocol)
                : null;
            return options.Embedded
                ? await RunEmbeddedAsync(options, stdout, stderr, redrawProgress, cancellation)
                : await RunRemoteAsync(options, stdout, stderr, redrawProgress, cancellation);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"strata-loadtest: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellation.IsCancellationRequested)
        {
            stderr.WriteLine($"strata-loadtest: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static async Task<int> RunRemoteAsync(LoadTestOptions o, TextWriter stdout, TextWriter stderr, bool redraw, CancellationToken ct)
    {
        await using var connection = await Connection.ConnectAsync(o.Redis, o.GatewayPorts, o.ClusterId, ct);
        var client = connection.Client;
        var status = await client.GetModelStatusAsync(o.Model!);
        if (status.State != DeploymentState.Ready)
            throw new UsageException($"model '{o.Model}' is {status.State} on the cluster{(status.Error is null ? "" : ": " + status.Error)}");
        var silos = await client.GetSilosAsync();
        string target = o.Redis is not null ? $"redis {o.Redis}" : $"gateways {string.Join(",", o.GatewayPorts!)}";
        var shape = new ClusterShape(target, silos.Count, status, null);
        return await MeasureAsync(o, client, o.Model!, o.Vocab, shape, stdout, stderr, redraw, ct);
    }

    private static async Task<int> RunEmbeddedAsync(LoadTestOptions o, TextWriter stdout, TextWriter stderr, bool redraw, CancellationToken ct)
    {
        string modelPath = Path.GetFullPath(o.ModelPath!);
        if (!Directory.Exists(modelPath)) throw new UsageException($"--model-path {o.ModelPath}: no such folder");
        string? work = null;
        try
        {
            ModelPackage package;
            if (ModelPackage.IsPackage(modelPath))
            {
                package = ModelPackage.Open(modelPath, verify: false);
            }
            else if (File.Exists(Path.Combine(modelPath, "config.json")))
            {
                work = Path.Combine(Path.GetTempPath(), "strata-loadtest-" + Guid.NewGuid().ToString("N")[..12]);
                stderr.WriteLine($"[load] importing {modelPath} into {work}");
                package = ModelImporter.Import(modelPath, Path.Combine(work, "package"));
            }
            else
            {
                throw new UsageException($"--model-path {o.ModelPath} is neither a Strata package nor a Hugging Face folder");
            }
            int layers = package.Config.NumLayers;
            int stages = o.Stages ?? Math.Min(o.Silos, layers);
            if (stages > layers) throw new UsageException($"--stages {stages} is more than the model's {layers} layers");
            int vocab = package.Config.VocabSize;
            if (o.PromptTokens + o.MaxNewTokens > package.Config.MaxPositionEmbeddings)
                throw new UsageException($"--prompt-tokens + --max-new-tokens exceeds the model's {package.Config.MaxPositionEmbeddings} positions");
            int maxContext = Math.Min(package.Config.MaxPositionEmbeddings, o.PromptTokens + o.MaxNewTokens + 8);
            int maxSessions = o.MaxSessions ?? (o.ClosedLoop ? o.Levels.Max() : Math.Min(o.Requests, 64));
            if (o.ClosedLoop && maxSessions < o.Levels.Max()) throw new UsageException($"--max-sessions {maxSessions} is below --concurrency {o.Levels.Max()}");
            string model = o.Model ?? package.Name;

            var clock = Stopwatch.StartNew();
            var cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions
            {
                Silos = o.Silos,
                ModelStore = Path.GetDirectoryName(package.Directory)!,
                ClusterId = "strata-loadtest",
            }, ct);
            try
            {
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[load] started {o.Silos} silos (gateways {string.Join(", ", cluster.GatewayPorts)}) in {clock.Elapsed.TotalSeconds:F1} s"));
                await using var connection = await Connection.ConnectAsync(null, cluster.GatewayPorts, cluster.ClusterId, ct);
                var client = connection.Client;
                clock.Restart();
                var status = await client.DeployAsync(model, new DeployRequest(package.Directory, stages, maxContext, maxSessions),
                    timeout: TimeSpan.FromMinutes(5), cancellation: ct);
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[load] deployed {model} over {stages} stages (max context {maxContext}, {maxSessions} sessions) in {clock.Elapsed.TotalSeconds:F1} s"));
                var shape = new ClusterShape("embedded", o.Silos, status, package);
                return await MeasureAsync(o, client, model, vocab, shape, stdout, stderr, redraw, ct);
            }
            finally
            {
                await cluster.DisposeAsync();
            }
        }
        finally
        {
            if (work is not null)
            {
                try { Directory.Delete(work, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { stderr.WriteLine($"[load] could not remove {work}: {e.Message}"); }
            }
        }
    }

    private static async Task<int> MeasureAsync(LoadTestOptions o, StrataClient client, string model, int vocab, ClusterShape shape,
        TextWriter stdout, TextWriter stderr, bool redraw, CancellationToken ct)
    {
        var reports = new List<LoadReport>();
        var levels = o.ClosedLoop ? o.Levels : [0];
        for (int i = 0; i < levels.Count; i++)
        {
            var lo = o.ClosedLoop ? o with { Concurrency = levels[i], Sweep = null } : o;
            if (levels.Count > 1) stderr.WriteLine($"[load] sweep level {i + 1}/{levels.Count}: concurrency {levels[i]}");
            var result = await new LoadRun(lo, client, model, vocab).ExecuteAsync(stderr, redraw, ct);
            var report = new LoadReport(lo, model, vocab, shape, result);
            report.WriteSummary(stdout);
            reports.Add(report);
        }
        if (reports.Count > 1) WriteSweepSummary(reports, stdout);
        if (o.Json is not null)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(o.Json));
            if (dir is not null) Directory.CreateDirectory(dir);
            await File.WriteAllTextAsync(o.Json, JsonSerializer.Serialize(Json(reports), new JsonSerializerOptions { WriteIndented = true }), ct);
        }
        if (o.Report is not null)
        {
            string? chartError = ReportDocument.Write(o.Report, RunReport.Content(reports), () => Charts.Draw(reports));
            if (chartError is not null) stderr.WriteLine($"[load] {chartError}");
            stderr.WriteLine($"[load] report written to {Path.Combine(o.Report, "report.md")} and report.html");
        }
        return 0;
    }

    /// <summary>One run: its report's JSON as it always was. A sweep: the same fields for the highest concurrency
    /// (so readers of single runs still read it), plus <c>levels</c>, every level's full result in the order run.</summary>
    internal static Dictionary<string, object?> Json(IReadOnlyList<LoadReport> reports)
    {
        if (reports.Count == 1) return reports[0].ToJson();
        var root = reports.MaxBy(r => r.Concurrency)!.ToJson();
        root["concurrency_levels"] = reports.Select(r => r.Concurrency).ToArray();
        root["levels"] = reports.Select(r => r.ToJson()).ToArray();
        return root;
    }

    private static void WriteSweepSummary(IReadOnlyList<LoadReport> reports, TextWriter w)
    {
        bool slo = reports[0].Goodput is not null;
        w.WriteLine("============ Strata load test: concurrency sweep ============");
        w.WriteLine($"{"concurrency",12}{"req/s",10}{"tok/s",10}{"ttft p50",10}{"tpot p50",10}{"e2e p99",10}{"failed",8}{(slo ? "  goodput" : "")}");
        foreach (var r in reports)
            w.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Concurrency,12}{r.RequestsPerSecond,10:F2}{r.OutputTokensPerSecond,10:F1}{r.Ttft.P50,10:F2}{r.Tpot.P50,10:F2}{r.E2E.P99,10:F2}{r.Failed,8}{(slo ? $"{r.Goodput!.RequestsPerSecond,9:F2}" : "")}"));
        w.WriteLine("=============================================================");
        w.Flush();
    }
}

/// <summary>The cluster as the run found it.</summary>
internal sealed record ClusterShape(string Target, int Silos, ModelStatus Status, ModelPackage? Package);
