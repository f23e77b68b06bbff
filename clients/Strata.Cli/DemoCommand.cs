using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Strata.Client;
using Strata.Contracts;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Cli;

/// <summary>
/// <c>strata demo</c>: the whole path on one machine. Starts N silos in this process (loopback, free ports, no Redis),
/// imports the model into a temporary model store (or synthesizes a small one), deploys it across the silos,
/// streams a completion through a client connected to their gateways, and shuts everything down.
/// </summary>
internal static class DemoCommand
{
    private const string DefaultPreset = "small";

    public static Command Create(CliOutput output)
    {
        var model = new Option<string?>("--model")
        {
            Description = $"Hugging Face folder or Strata package (default: a random-weight '{DefaultPreset}' model synthesized for the run)",
        };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text", DefaultValueFactory = _ => "Once upon a time" };
        var silos = new Option<int>("--silos") { Description = "Silos to start in this process (at least 2)", DefaultValueFactory = _ => 2 };
        var stages = new Option<int?>("--stages") { Description = "Stages to cut the model into (default: one per silo)" };
        var sampling = new SamplingOptions();
        var cmd = new Command("demo", "Start a local cluster in this process, deploy a model across its silos, generate, shut down.")
        {
            model, prompt, silos, stages,
        };
        sampling.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            int siloCount = parse.GetValue(silos);
            if (siloCount is < 2 or > 16) throw new CliUsageException($"--silos must be between 2 and 16, got {siloCount}");
            int? stageCount = parse.GetValue(stages);
            if (stageCount is < 1) throw new CliUsageException($"--stages must be at least 1, got {stageCount}");
            var request = sampling.BuildRequest(parse, "demo", parse.GetValue(prompt)!);
            string? modelPath = parse.GetValue(model);
            if (modelPath is not null && !Directory.Exists(modelPath)) throw new DirectoryNotFoundException($"--model {modelPath}: no such folder");

            string work = Path.Combine(Path.GetTempPath(), "strata-demo-" + Guid.NewGuid().ToString("N")[..12]);
            Directory.CreateDirectory(work);
            try
            {
                return await RunAsync(output, work, modelPath, siloCount, stageCount, request, ct);
            }
            finally
            {
                try { Directory.Delete(work, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { output.Err.WriteLine($"[demo] could not remove {work}: {e.Message}"); }
            }
        });
        return cmd;
    }

    private static async Task<int> RunAsync(CliOutput output, string work, string? modelPath, int siloCount, int? stageCount,
        GenerateRequest request, CancellationToken ct)
    {
        string store = Path.Combine(work, "models");
        Directory.CreateDirectory(store);
        var package = PreparePackage(output, store, modelPath);
        store = ServingStore(package, store);
        int layers = package.Config.NumLayers;
        int stagesWanted = stageCount ?? Math.Min(siloCount, layers);
        if (stagesWanted > layers) throw new CliUsageException($"--stages {stagesWanted} is more than the model's {layers} layers");

        var clock = Stopwatch.StartNew();
        var cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions
        {
            Silos = siloCount,
            ModelStore = store,
            ClusterId = "strata-demo",
        }, ct);
        try
        {
            output.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[demo] started {siloCount} silos on 127.0.0.1 (gateways {string.Join(", ", cluster.GatewayPorts)}) in {clock.Elapsed.TotalSeconds:F1} s"));
            await using (var connection = await ClusterConnection.ConnectAsync(cluster.Target, ct))
                await DeployAndGenerateAsync(output, connection.Client, package, stagesWanted, request, ct);
        }
        finally
        {
            clock.Restart();
            await cluster.DisposeAsync();
            output.Err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[demo] stopped the cluster in {clock.Elapsed.TotalSeconds:F1} s"));
        }
        return 0;
    }

    private static async Task DeployAndGenerateAsync(CliOutput output, StrataClient client, ModelPackage package, int stages,
        GenerateRequest request, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        // One session at a time: each stage holds KV for the whole context of one conversation.
        int maxContext = Math.Min(2048, package.Config.MaxPositionEmbeddings);
        string name = package.Name;
        var status = await client.DeployAsync(name, new DeployRequest(package.Directory, stages, maxContext, MaxSessions: 1),
            timeout: TimeSpan.FromMinutes(5), cancellation: ct);
        var siloNames = await ClusterCommands.SiloNames(client);
        string placement = string.Join(", ", status.Stages.Select(s =>
            $"stage {s.Index} layers [{s.FirstLayer}, {s.EndLayer}) on {siloNames.GetValueOrDefault(s.Silo, s.Silo)} ({s.Device})"));
        output.Err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[demo] deployed {name} in {clock.Elapsed.TotalSeconds:F1} s: {placement}"));

        output.Out.Write(request.Prompt);
        string session = ClusterTurn.NewSessionId();
        var turn = await ClusterTurn.StreamAsync(client, session, request with { Model = name }, text =>
        {
            output.Out.Write(text);
            output.Out.Flush();
        }, ct);
        await ClusterTurn.ReleaseAsync(client, session);
        output.Out.WriteLine();
        output.Err.WriteLine($"[demo] {turn.Summary()}; seed {request.Seed}");
    }

    /// <summary>The silos' model store for <paramref name="package"/>: <paramref name="store"/> when it was imported
    /// there; the folder that holds it when a package was given in place (silos only load packages inside their store).</summary>
    internal static string ServingStore(ModelPackage package, string store) =>
        package.Directory.StartsWith(store + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? store
            : Path.GetDirectoryName(package.Directory)!;

    /// <summary>The package to deploy: the given one, the given Hugging Face folder imported into the store, or a
    /// synthesized model imported into the store.</summary>
    internal static ModelPackage PreparePackage(CliOutput output, string store, string? modelPath)
    {
        if (modelPath is not null && ModelPackage.IsPackage(modelPath))
            return ModelPackage.Open(Path.GetFullPath(modelPath), verify: false);

        string source = modelPath ?? Path.Combine(store, "synthetic-src");
        if (modelPath is null)
        {
            var bar = new ProgressBar(output.Err, "synth", !Console.IsErrorRedirected);
            SyntheticCheckpoint.Write(SyntheticOptions.Preset(DefaultPreset), source, new BarProgress<double>(bar, f => (f, null)));
            bar.Report(1);
        }
        else if (!File.Exists(Path.Combine(modelPath, "config.json")))
        {
            throw new CliUsageException($"--model {modelPath} is neither a Strata package ({PackageManifest.FileName}) nor a Hugging Face folder (config.json)");
        }

        string name = modelPath is null ? $"synthetic-{DefaultPreset}" : Path.GetFileName(Path.GetFullPath(modelPath).TrimEnd(Path.DirectorySeparatorChar));
        var importBar = new ProgressBar(output.Err, "import", !Console.IsErrorRedirected);
        var package = ModelImporter.Import(source, Path.Combine(store, name), new ImportOptions { Name = name },
            new BarProgress<ImportProgress>(importBar, p => (p.Fraction, p.CurrentTensor)));
        importBar.Report(1);
        return package;
    }

    private sealed class BarProgress<T>(ProgressBar bar, Func<T, (double Fraction, string? Detail)> select) : IProgress<T>
    {
        public void Report(T value)
        {
            var (fraction, detail) = select(value);
            bar.Report(fraction, detail);
        }
    }
}
