using LLama;
using LLama.Common;
using LLama.Native;
using Strata.Engine.Runtime;
using Strata.Engine.Tests.Reference;
using Strata.Models.Checkpoints;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tokenization;
using Xunit.Abstractions;

namespace Strata.Engine.Tests.Engine;

/// <summary>
/// llama.cpp itself (LLamaSharp 0.30's CPU backend) as the second opinion on GGUF: it loads the files Strata writes and
/// generates what Strata generates, and Strata reads the files llama.cpp's own quantizer writes (Q8_0, Q4_0 and the
/// Q4_K/Q6_K mix of Q4_K_M).
/// </summary>
public sealed class LlamaCppInteropTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "strata-llamacpp-" + Guid.NewGuid().ToString("N")[..12])).FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    /// <summary>llama.cpp's tokens for the prompt and its greedy continuation.</summary>
    private static (int[] Prompt, int[] Tokens) LlamaCppGreedy(string file, string prompt, int steps)
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
            Assert.Equal(DecodeResult.Ok, context.Decode(batch));
            var logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
            int best = 0;
            for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
            tokens.Add(best);
            batch.Clear();
            batch.Add((LLamaToken)best, pos, LLamaSeqId.Zero, true);
        }
        return (ids.Select(t => (int)t).ToArray(), tokens.ToArray());
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    public void Llama_cpp_generates_from_Strata_files_what_Strata_generates(GgmlType type)
    {
        string dir = TestModels.Stories260K!;
        string file = Path.Combine(_dir, $"stories260K-{type}.gguf");
        GgufExporter.Export(dir, file, type);
        var (llamaPrompt, llamaTokens) = LlamaCppGreedy(file, "Once upon a time", 24);

        int[] prompt = TokenizerLoader.Load(dir).Encode("Once upon a time");
        Assert.Equal(prompt, llamaPrompt);
        using var checkpoint = HfCheckpoint.Open(dir);
        using var pipeline = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, 1, new EngineOptions { MaxContext = 64, IntraOpThreads = 1 });
        var (_, tokens) = EngineAgreement.PipelineGreedy(pipeline, prompt, 24);
        output.WriteLine($"{type}: llama.cpp {string.Join(",", llamaTokens)}");
        Assert.Equal(tokens, llamaTokens);
    }

    [Theory]
    [InlineData(LLamaFtype.MOSTLY_Q8_0, GgmlType.Q8_0, "int8")]
    [InlineData(LLamaFtype.MOSTLY_Q4_0, GgmlType.Q4_0, "int4")]
    [InlineData(LLamaFtype.MOSTLY_Q4_K_M, GgmlType.Q4_K, "int4")]
    public void Strata_reads_what_llama_cpps_quantizer_writes(LLamaFtype ftype, GgmlType mostly, string scheme)
    {
        // Rows of 256 and 512 values: whole k-quant super-blocks, so llama.cpp quantizes every matrix.
        var options = new SyntheticOptions { Layers = 2, Hidden = 256, Heads = 4, KvHeads = 2, Intermediate = 512, Vocab = 512 };
        string src = Path.Combine(_dir, "src");
        SyntheticCheckpoint.Write(options, src);
        string f32 = Path.Combine(_dir, "f32.gguf"), quantized = Path.Combine(_dir, $"{ftype}.gguf");
        GgufExporter.Export(src, f32, GgmlType.F32);
        NativeApi.llama_empty_call(); // loads the native library before the quantizer's first call
        Assert.True(LLamaQuantizer.Quantize(f32, quantized, ftype, nthread: 1));

        using var original = HfCheckpoint.Open(src);
        using (var gguf = GgufCheckpoint.Open(quantized))
        {
            var types = gguf.File.Tensors.Values.Select(t => t.Type).Distinct().Order().ToList();
            output.WriteLine($"{ftype}: {string.Join(", ", types)}");
            Assert.Equal(mostly, gguf.Tensors.Tensor(LlamaTensors.Attn(0, 'q')).Type);
            if (ftype == LLamaFtype.MOSTLY_Q4_K_M) Assert.Contains(GgmlType.Q6_K, types);
            // Each quantized matrix reads back (un-permuted) within a few of its grid's steps of the original.
            foreach (var t in LlamaTensors.Expected(gguf.Config).Where(t => t.Shape.Length == 2))
            {
                var w = original.ReadFloat32(t.Name);
                var back = gguf.Tensors.ReadFloat32(t.Name);
                var type = gguf.Tensors.Tensor(t.Name).Type;
                float amax = w.Max(Math.Abs);
                float bound = amax * (type switch { GgmlType.Q8_0 => 1f / 127, GgmlType.Q6_K => 1f / 31, _ => 1f / 7 });
                double rms = Math.Sqrt(w.Zip(back).Average(p => (double)(p.First - p.Second) * (p.First - p.Second)));
                Assert.True(w.Zip(back).All(p => Math.Abs(p.First - p.Second) <= bound), $"{t.Name} ({type}): an error exceeds {bound}");
                Assert.True(rms <= bound / 2, $"{t.Name} ({type}): rms error {rms}");
            }
        }
        var package = ModelImporter.Import(quantized, Path.Combine(_dir, "pkg"));
        Assert.Equal(scheme, package.Manifest.Quantization);

        // The two implementations then agree on the first tokens (random weights give near-flat logits, so only
        // the first few are compared).
        var (prompt, llamaTokens) = LlamaCppGreedy(quantized, "Once upon a time", 4);
        using var tensors = package.OpenAll();
        using var pipeline = LocalPipeline.Load(package.Config, tensors, 1, new EngineOptions { MaxContext = 64, IntraOpThreads = 1 });
        var (_, tokens) = EngineAgreement.PipelineGreedy(pipeline, prompt, 4);
        output.WriteLine($"llama.cpp {string.Join(",", llamaTokens)}; Strata {string.Join(",", tokens)}");
        Assert.Equal(llamaTokens[..3], tokens[..3]);
    }
}
