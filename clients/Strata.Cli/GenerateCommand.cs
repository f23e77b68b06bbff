using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Strata.Engine.Generation;
using Strata.Engine.Runtime;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Cli;

/// <summary>
/// <c>strata generate</c>: local generation, no cluster. The model (Hugging Face folder or package) is split into
/// K stages run back to back in this process. With <c>--cluster</c> the model is a deployed model's name and the
/// tokens come from a session on the cluster (<see cref="ClusterGenerate"/>). <c>--json</c> prints exactly one JSON
/// object on stdout, the same in both modes.
/// </summary>
internal static class GenerateCommand
{
    public static Command Create(CliOutput output)
    {
        var model = new Option<string>("--model") { Description = "Hugging Face model folder or Strata package; with --cluster, the deployed model's name", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Prompt text", Required = true };
        var o = new SamplingOptions();
        var stages = new Option<int>("--stages") { Description = "Split the model into K stages run back to back (1 = one graph)", DefaultValueFactory = _ => 1 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N (CUDA falls back to the CPU, logged, when it cannot load)", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads (0 = one per core)", DefaultValueFactory = _ => 0 };
        var maxContext = new Option<int?>("--max-context") { Description = "KV positions per sequence (default: min(2048, max_position_embeddings))" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: prompt_ids, generated_ids, text, stop_reason" };
        var cluster = new Option<bool>("--cluster") { Description = "Generate on a running cluster: --model names a deployed model" };
        var session = new Option<string?>("--session") { Description = "With --cluster: the session (conversation) id (default: a new one)" };
        var clusterFlags = new ClusterFlags();

        var cmd = new Command("generate", "Generate text locally, or on a cluster with --cluster.") { model, prompt, stages, device, threads, maxContext, json, cluster, session };
        o.AddTo(cmd);
        clusterFlags.AddTo(cmd);
        cmd.SetAction((parse, ct) =>
        {
            if (parse.GetValue(cluster))
            {
                if (new Option[] { stages, device, threads, maxContext }.FirstOrDefault(opt => CliFlags.Given(parse, opt)) is Option local)
                    throw new CliUsageException($"{local.Name} applies to local generation; on a cluster the deployment sets it (strata cluster deploy)");
                return ClusterGenerate.RunAsync(output, clusterFlags.Get(parse), parse.GetValue(model)!, parse.GetValue(prompt)!,
                    parse.GetValue(session), o, parse, parse.GetValue(json), ct);
            }
            if (CliFlags.Given(parse, session) || clusterFlags.AnyGiven(parse))
                throw new CliUsageException("--session, --redis, --gateway-port and --cluster-id need --cluster");
            var engine = new EngineOptions
            {
                Device = DeviceSpec.Parse(parse.GetValue(device)!),
                IntraOpThreads = parse.GetValue(threads),
                MaxContext = parse.GetValue(maxContext),
            };
            return Task.FromResult(Run(output, parse.GetValue(model)!, parse.GetValue(prompt)!, parse.GetValue(stages), engine,
                o, parse, parse.GetValue(json), ct));
        });
        return cmd;
    }

    private static int Run(CliOutput output, string modelPath, string prompt, int stageCount, EngineOptions engine,
        SamplingOptions samplingOptions, ParseResult parse, bool json, CancellationToken ct)
    {
        using var loaded = ModelLoader.Open(modelPath);
        var tokenizer = TokenizerLoader.Load(loaded.TokenizerDirectory);
        var sampling = samplingOptions.Build(parse, tokenizer);
        if (stageCount < 1 || stageCount > loaded.Config.NumLayers)
            throw new CliUsageException($"--stages must be between 1 and the model's {loaded.Config.NumLayers} layers, got {stageCount}");

        using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(c => c.SingleLine = true)
            .AddFilter(level => level >= LogLevel.Warning)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace));
        var loadClock = Stopwatch.StartNew();
        using var pipeline = LocalPipeline.Load(loaded.Config, loaded.Tensors, stageCount, engine, 1, loggerFactory.CreateLogger("strata"));
        loadClock.Stop();

        int[] promptIds = tokenizer.Encode(prompt);
        if (!json) output.Out.Write(prompt);
        var clock = Stopwatch.StartNew();
        TimeSpan? firstToken = null;
        var result = LocalGenerator.Generate(pipeline, tokenizer, promptIds, sampling, chunk =>
        {
            firstToken ??= clock.Elapsed;
            if (!json)
            {
                output.Out.Write(chunk.Text);
                output.Out.Flush();
            }
        }, ct);
        clock.Stop();

        if (json)
        {
            WriteJson(output.Out, result.PromptIds, result.GeneratedIds, result.Text, result.StopReason);
        }
        else
        {
            output.Out.WriteLine();
            double decodeSeconds = (clock.Elapsed - (firstToken ?? TimeSpan.Zero)).TotalSeconds;
            int decoded = Math.Max(0, result.GeneratedIds.Length - 1);
            output.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[{loaded.Description}; {stageCount} stage(s) on {pipeline.Stages[0].Device}; load {loadClock.Elapsed.TotalSeconds:F2} s; " +
                $"{promptIds.Length} prompt tokens, {result.GeneratedIds.Length} generated; " +
                $"first token {firstToken?.TotalMilliseconds ?? 0:F0} ms; decode {(decodeSeconds > 0 ? decoded / decodeSeconds : 0):F1} tok/s; " +
                $"stop: {result.StopReason}; seed {sampling.Seed}]"));
        }
        return 0;
    }

    /// <summary>The one object <c>--json</c> prints, in both modes.</summary>
    public static void WriteJson(TextWriter writer, IEnumerable<int> promptIds, IEnumerable<int> generatedIds, string text, string stopReason)
    {
        var o = new JsonObject
        {
            ["prompt_ids"] = new JsonArray(promptIds.Select(i => (JsonNode)i).ToArray()),
            ["generated_ids"] = new JsonArray(generatedIds.Select(i => (JsonNode)i).ToArray()),
            ["text"] = text,
            ["stop_reason"] = stopReason,
        };
        writer.WriteLine(o.ToJsonString(JsonOptions));
    }

    /// <summary>How every command writes JSON: non-ASCII text as is.</summary>
    public static readonly JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
