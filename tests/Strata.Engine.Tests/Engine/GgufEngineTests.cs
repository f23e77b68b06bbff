using Strata.Engine.Evaluation;
using Strata.Engine.Reference;
using Strata.Engine.Runtime;
using Strata.Engine.Tests.Reference;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tokenization;
using Xunit.Abstractions;

namespace Strata.Engine.Tests.Engine;

/// <summary>
/// Packages imported from GGUF files that the tests write (<see cref="GgufExporter"/>) generate as the safetensors
/// path does: token for token for F32 and F16, within the quantization bounds for Q8_0 and Q4_0.
/// </summary>
public sealed class GgufEngineTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-gguf-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private const string Story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        + "One day, she saw a big dog. The dog was very friendly and wanted to play with Lily. They played all day and had lots of fun.";

    private string Source(string name, SyntheticOptions? synthetic)
    {
        if (synthetic is null) return TestModels.Stories260K;
        string src = Path.Combine(_dir, name + "-src");
        if (!Directory.Exists(src)) SyntheticCheckpoint.Write(synthetic, src);
        return src;
    }

    private ModelPackage FromGguf(string name, string source, GgmlType type)
    {
        Directory.CreateDirectory(_dir);
        string file = Path.Combine(_dir, $"{name}-{type}.gguf");
        GgufExporter.Export(source, file, type);
        return ModelImporter.Import(file, Path.Combine(_dir, $"{name}-{type}-pkg"));
    }

    private static (float[] Logits, int[] Tokens) Greedy(ModelPackage package, int[] prompt, int steps, int stages = 1)
    {
        using var tensors = package.OpenAll();
        using var pipeline = LocalPipeline.Load(package.Config, tensors, stages, new EngineOptions { MaxContext = 128, IntraOpThreads = 1 });
        return EngineAgreement.PipelineGreedy(pipeline, prompt, steps);
    }

    public static TheoryData<string, GgmlType> FloatCases => new()
    {
        { "stories260K", GgmlType.F32 },
        { "stories260K", GgmlType.F16 },
        { "tiny", GgmlType.F32 },
        { "tiny", GgmlType.F16 },
        { "qwen2", GgmlType.F32 },
        { "qwen2", GgmlType.BF16 },
    };

    [Theory]
    [MemberData(nameof(FloatCases))]
    public void Float_files_generate_exactly_as_the_safetensors_path(string model, GgmlType type)
    {
        var synthetic = model switch
        {
            "tiny" => SyntheticOptions.Preset("tiny"),
            // Qwen2: q/k/v biases, NeoX RoPE (no permutation in the file), a tied head.
            "qwen2" => SyntheticOptions.Preset("tiny") with { Architecture = "Qwen2ForCausalLM", Tied = true, RopeTheta = 1e6 },
            _ => null,
        };
        string source = Source(model, synthetic);
        var gguf = FromGguf(model, source, type);
        var dtype = type.FloatDType()!.Value;
        var safetensors = ModelImporter.Import(source, Path.Combine(_dir, $"{model}-{type}-st"), new ImportOptions { DType = dtype });
        Assert.Equal(dtype, gguf.DType);

        var tokenizer = TokenizerLoader.Load(gguf.Directory);
        int[] prompt = tokenizer.Encode("Once upon a time");
        Assert.Equal(TokenizerLoader.Load(source).Encode("Once upon a time"), prompt);
        foreach (int stages in new[] { 1, 2 })
        {
            var (refLogits, refTokens) = Greedy(safetensors, prompt, 48, stages);
            var (logits, tokens) = Greedy(gguf, prompt, 48, stages);
            Assert.Equal(refTokens, tokens);
            Assert.Equal(refLogits, logits);
        }
        if (model == "stories260K")
        {
            var (_, tokens) = Greedy(gguf, prompt, 24);
            string text = tokenizer.Decode(tokens.TakeWhile(t => t is not (1 or 2)));
            output.WriteLine(text);
            Assert.StartsWith(", there was a little girl named Lily.", text, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// MatMulNBits at accuracy_level 0 over the blocks mapped straight from Q8_0 / Q4_0 equals the float reference
    /// forward pass over ggml's dequantization of the same file, token for token: the mapping changes no value.
    /// </summary>
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void Quantized_blocks_run_as_ggml_dequantizes_them(GgmlType type)
    {
        var synthetic = new SyntheticOptions { Layers = 2, Hidden = 128, Heads = 4, KvHeads = 2, Intermediate = 256, Vocab = 320 };
        string source = Source("q", synthetic);
        var package = FromGguf("q", source, type);
        string file = Path.Combine(_dir, $"q-{type}.gguf");
        using var gguf = GgufCheckpoint.Open(file);
        var reference = ReferenceModel.Load(gguf.Config, gguf.Tensors);
        int[] prompt = [1, 200, 201, 40, 77, 120, 5];
        var (refLogits, refTokens) = EngineAgreement.ReferenceGreedy(reference, prompt, 12);
        using var tensors = package.OpenAll();
        using var pipeline = LocalPipeline.Load(package.Config, tensors, 2,
            new EngineOptions { MaxContext = 64, IntraOpThreads = 1, QuantizedAccuracyLevel = 0 });
        var (logits, tokens) = EngineAgreement.PipelineGreedy(pipeline, prompt, 12);
        float diff = EngineAgreement.MaxAbsDiff(refLogits, logits);
        output.WriteLine($"{type}: first-step logits within {diff}");
        Assert.True(diff <= 1e-4f, $"logits differ by {diff}");
        Assert.Equal(refTokens, tokens);
        Assert.Contains("MatMulNBits", StageGraphBuilderDescription(package));
    }

    private static string StageGraphBuilderDescription(ModelPackage package)
    {
        using var tensors = package.OpenAll();
        return Graph.StageGraphBuilder.DescribeProjections(package.Config, tensors, new Graph.StageSpec(0, package.Config.NumLayers, package.Config.NumLayers));
    }

    // Measured (ONNX Runtime, CPU, accuracy_level 4) against the fp32 safetensors package: Q8_0 64/64 teacher-forced
    // and 64/64 free-running, KL 4.4e-4, perplexity x0.998; Q4_0 54/64 and 23/64, KL 0.069, perplexity x1.113. The
    // file's embedding is quantized too (as llama.cpp writes it; the package stores it dequantized), so Q4_0 loses a
    // little more than `strata import --quant int4`. The bounds leave a margin for other CPUs' kernels.
    [Theory]
    [InlineData(GgmlType.Q8_0, 62, 1.01, 1e-3)]
    [InlineData(GgmlType.Q4_0, 48, 1.2, 0.12)]
    public void Stories260K_quantized_files_follow_fp32(GgmlType type, int minAgreement, double maxPerplexityRatio, double maxKl)
    {
        string dir = TestModels.Stories260K;
        var tokenizer = TokenizerLoader.Load(dir);
        int[] prompt = tokenizer.Encode("Once upon a time");
        int[] text = tokenizer.Encode(Story);
        var fp32 = ModelImporter.Import(dir, Path.Combine(_dir, "fp32"));
        var quantized = FromGguf("stories260K", dir, type);
        Assert.Equal(type == GgmlType.Q8_0 ? "int8" : "int4", quantized.Manifest.Quantization);
        using var fpTensors = fp32.OpenAll();
        using var qTensors = quantized.OpenAll();
        var options = new EngineOptions { MaxContext = 256, IntraOpThreads = 1 };
        using var reference = LocalPipeline.Load(fp32.Config, fpTensors, 1, options);
        using var candidate = LocalPipeline.Load(quantized.Config, qTensors, 1, options);
        var report = AccuracyReport.Measure(reference, candidate, [prompt], 64, text);
        output.WriteLine($"stories260K {type} GGUF:\n{report.ToText()}");
        Assert.True(report.GreedyAgreement >= minAgreement, $"greedy agreement {report.GreedyAgreement}/64 is below {minAgreement}");
        Assert.True(report.PerplexityRatio <= maxPerplexityRatio, $"perplexity ratio {report.PerplexityRatio} exceeds {maxPerplexityRatio}");
        Assert.True(report.PerplexityRatio >= 1 / maxPerplexityRatio);
        Assert.True(report.MeanKl <= maxKl, $"KL divergence {report.MeanKl} exceeds {maxKl}");
        if (type == GgmlType.Q8_0) Assert.True(report.GreedyPrefixes[0] >= 48, $"free-running Q8_0 greedy left fp32 after {report.GreedyPrefixes[0]} tokens");
    }
}
