using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LLama;
using LLama.Common;
using LLama.Native;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;
using Strata.Models.Checkpoints;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Packaging;
using Strata.Models.Tokenization;

namespace Strata.Benchmarks;

/// <summary>
/// llama.cpp (LLamaSharp 0.30, CPU backend) beside Strata on the same weights. First a check: llama.cpp loads the
/// F32, F16 and Q8_0 GGUF files Strata writes of a real model (stories260K) and generates greedily exactly what
/// Strata generates from the original folder (a disagreement fails the run). Then decode tokens/s at batch 1 and 16,
/// one thread, for each GGUF type of the given model (F32, Q8_0, Q4_0): llama.cpp on the file, Strata on the same file
/// imported (fp32, int8, int4 by MatMulNBits; Q8_0/Q4_0 blocks map onto it unchanged), in interleaved rounds.
/// </summary>
internal static class LlamaPeerBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string model = a.Get("--model") ?? throw new ArgumentException("--model is required (a Hugging Face folder)");
        string? agree = a.Get("--agree");
        int[] batches = a.Ints("--batches", [1, 16]);
        int threads = a.Int("--threads", 1), steps = a.Int("--steps", 16), rounds = a.Int("--rounds", 3), promptTokens = a.Int("--prompt-tokens", 16);
        var types = (a.Get("--types") ?? "f32,q8_0,q4_0").Split(',').Select(t => Enum.Parse<GgmlType>(t, ignoreCase: true)).ToArray();
        string work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"strata-llama-peer-{Environment.ProcessId}")).FullName;
        NativeLibraryConfig.All.WithLogCallback((_, _) => { });
        try
        {
            bool agreed = (agree is null || Agreement(agree, work)) & ReadsLlamaQuantizer(work);
            var results = new List<object>();
            Console.WriteLine($"decode tok/s, {threads} thread(s), {promptTokens} prompt tokens, {steps} steps x {rounds} rounds (median)");
            Console.WriteLine($"{"type",6} {"batch",5} {"llama.cpp",10} {"Strata",10} {"Strata/llama.cpp",17}");
            foreach (var type in types)
            {
                string file = Path.Combine(work, $"model-{type}.gguf");
                GgufExporter.Export(model, file, type);
                var package = ModelImporter.Import(file, Path.Combine(work, $"pkg-{type}"));
                using var loaded = ModelLoader.Open(package.Directory);
                var c = loaded.Config;
                int maxContext = promptTokens + steps + 8;
                using var runtime = StageRuntime.Load(c, loaded.Tensors, new StageSpec(0, c.NumLayers, c.NumLayers),
                    new EngineOptions { IntraOpThreads = threads, MaxContext = maxContext });
                using var pool = runtime.CreateKvPool(batches.Max());
                var logits = new float[batches.Max() * c.VocabSize];
                var parameters = new ModelParams(file)
                {
                    ContextSize = (uint)(batches.Max() * maxContext), GpuLayerCount = 0, Threads = threads, BatchThreads = threads,
                    SeqMax = (uint)batches.Max(), BatchSize = (uint)Math.Max(512, batches.Max() * promptTokens),
                };
                using var weights = LLamaWeights.LoadFromFile(parameters);
                foreach (int b in batches)
                {
                    var samples = Stats.Interleaved(2, rounds, i => i == 0
                        ? LlamaTokensPerSecond(weights, parameters, b, promptTokens, steps, c.VocabSize)
                        : BatchBenchmark.TokensPerSecond(runtime, pool, b, promptTokens, steps, logits));
                    double peer = Stats.Median(samples[0]), strata = Stats.Median(samples[1]);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{type,6} {b,5} {peer,10:F1} {strata,10:F1} {strata / peer,17:F2}"));
                    results.Add(new { type = type.ToString(), scheme = package.Manifest.Quantization ?? "fp32", batch = b, llama_cpp_tokens_per_second = peer, strata_tokens_per_second = strata, ratio = strata / peer });
                }
            }
            if (a.Get("--json") is string json)
                File.WriteAllText(json, JsonSerializer.Serialize(new { model, threads, steps, rounds, agreed, results }, new JsonSerializerOptions { WriteIndented = true }));
            return agreed ? 0 : 1;
        }
        finally
        {
            try { Directory.Delete(work, true); } catch (IOException) { }
        }
    }

    /// <summary>llama.cpp on Strata's F32, F16 and Q8_0 files of <paramref name="dir"/> generates what Strata does.</summary>
    private static bool Agreement(string dir, string work)
    {
        const string text = "Once upon a time";
        int[] prompt = TokenizerLoader.Load(dir).Encode(text);
        using var checkpoint = HfCheckpoint.Open(dir);
        using var pipeline = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, 1, new EngineOptions { MaxContext = 64, IntraOpThreads = 1 });
        int[] strata = Greedy(pipeline, prompt, 24);
        bool all = true;
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.Q8_0 })
        {
            string file = Path.Combine(work, $"agree-{type}.gguf");
            GgufExporter.Export(dir, file, type);
            var (llamaPrompt, llama) = LlamaGreedy(file, text, 24);
            bool same = llamaPrompt.SequenceEqual(prompt) && llama.SequenceEqual(strata);
            all &= same;
            Console.WriteLine($"{Path.GetFileName(dir)} {type}: llama.cpp {(same ? "generates exactly what Strata generates" : "DISAGREES")} ({llama.Length} greedy tokens)");
            if (!same) Console.WriteLine($"  llama.cpp {string.Join(",", llama)}\n  Strata    {string.Join(",", strata)}");
        }
        return all;
    }

    /// <summary>Strata imports the Q8_0, Q4_0 and Q4_K_M files llama.cpp's own quantizer writes (of a small synthetic
    /// model whose rows are whole k-quant super-blocks) with the expected scheme, and agrees with llama.cpp on the first
    /// greedy tokens (random weights give near-flat logits, so only the first few are compared).</summary>
    private static bool ReadsLlamaQuantizer(string work)
    {
        var options = new Strata.Models.Synthetic.SyntheticOptions { Layers = 2, Hidden = 256, Heads = 4, KvHeads = 2, Intermediate = 512, Vocab = 512 };
        string src = Path.Combine(work, "quantizer-src"), f32 = Path.Combine(work, "quantizer-f32.gguf");
        Strata.Models.Synthetic.SyntheticCheckpoint.Write(options, src);
        GgufExporter.Export(src, f32, GgmlType.F32);
        NativeApi.llama_empty_call(); // loads the native library before the quantizer's first call
        bool all = true;
        foreach (var (ftype, scheme) in new[] { (LLamaFtype.MOSTLY_Q8_0, "int8"), (LLamaFtype.MOSTLY_Q4_0, "int4"), (LLamaFtype.MOSTLY_Q4_K_M, "int4") })
        {
            string file = Path.Combine(work, $"quantizer-{ftype}.gguf");
            if (!LLamaQuantizer.Quantize(f32, file, ftype, nthread: 1)) throw new InvalidOperationException($"llama.cpp's quantizer failed on {ftype}");
            var package = ModelImporter.Import(file, Path.Combine(work, $"quantizer-pkg-{ftype}"));
            var (prompt, llama) = LlamaGreedy(file, "Once upon a time", 4);
            using var tensors = package.OpenAll();
            using var pipeline = LocalPipeline.Load(package.Config, tensors, 1, new EngineOptions { MaxContext = 64, IntraOpThreads = 1 });
            int[] strata = Greedy(pipeline, prompt, 4);
            bool same = package.Manifest.Quantization == scheme && strata.Take(3).SequenceEqual(llama.Take(3));
            all &= same;
            Console.WriteLine($"llama.cpp's {ftype} file: Strata imports it as {package.Manifest.Quantization}; first greedy tokens {(same ? "agree" : "DISAGREE")}" +
                $" (llama.cpp {string.Join(",", llama)}, Strata {string.Join(",", strata)})");
        }
        return all;
    }

    private static int[] Greedy(LocalPipeline pipeline, int[] prompt, int steps)
    {
        using var seq = pipeline.NewSequence();
        var logits = seq.Forward(prompt);
        var tokens = new List<int>();
        for (int i = 0; i < steps; i++)
        {
            int next = Sampler.ArgMax(logits);
            tokens.Add(next);
            logits = seq.Forward([next]);
        }
        return tokens.ToArray();
    }

    private static (int[] Prompt, int[] Tokens) LlamaGreedy(string file, string prompt, int steps)
    {
        var parameters = new ModelParams(file) { ContextSize = 128, GpuLayerCount = 0, Threads = 1, BatchThreads = 1 };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var ids = context.Tokenize(prompt, addBos: true);
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++) batch.Add(ids[i], i, LLamaSeqId.Zero, i == ids.Length - 1);
        var tokens = new List<int>();
        for (int pos = ids.Length; tokens.Count < steps; pos++)
        {
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp failed to decode");
            tokens.Add(ArgMax(context.NativeHandle.GetLogitsIth(batch.TokenCount - 1)));
            batch.Clear();
            batch.Add((LLamaToken)tokens[^1], pos, LLamaSeqId.Zero, true);
        }
        return (ids.Select(t => (int)t).ToArray(), tokens.ToArray());
    }

    /// <summary>llama.cpp decode tokens/s for <paramref name="rows"/> sequences stepped together (one batch of one
    /// token per sequence per step), after each sequence's prompt; a fresh context per measurement.</summary>
    private static double LlamaTokensPerSecond(LLamaWeights weights, ModelParams parameters, int rows, int promptTokens, int steps, int vocab)
    {
        using var context = weights.CreateContext(parameters);
        var batch = new LLamaBatch();
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < promptTokens; i++)
                batch.Add((LLamaToken)(3 + (i * 7 + r * 13) % (vocab - 3)), i, (LLamaSeqId)r, i == promptTokens - 1);
        if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp failed to decode the prompts");
        var next = new int[rows];
        for (int r = 0; r < rows; r++) next[r] = ArgMax(context.NativeHandle.GetLogitsIth((r + 1) * promptTokens - 1));
        var clock = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            batch.Clear();
            for (int r = 0; r < rows; r++) batch.Add((LLamaToken)next[r], promptTokens + s, (LLamaSeqId)r, true);
            if (context.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama.cpp failed to decode a step");
            for (int r = 0; r < rows; r++) next[r] = ArgMax(context.NativeHandle.GetLogitsIth(r));
        }
        return rows * steps / clock.Elapsed.TotalSeconds;
    }

    private static int ArgMax(Span<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }
}
