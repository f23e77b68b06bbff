using Strata.Models.Checkpoints;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Quantization;
using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>GGUF files written by <see cref="GgufExporter"/> read back as the checkpoint they came from.</summary>
public sealed class GgufReaderTests
{
    [Fact]
    public void Permute_matches_the_converters_reshape_and_unpermute_is_its_exact_inverse()
    {
        foreach (var (heads, headDim, cols) in new[] { (8, 8, 3), (4, 16, 5), (2, 2, 1), (1, 64, 2) })
        {
            int rows = heads * headDim;
            var w = Enumerable.Range(0, rows * cols).Select(i => (float)i).ToArray();
            var permuted = GgufPermute.Permute<float>(w, rows, cols, heads);
            // convert_hf_to_gguf.py: w.reshape(heads, 2, headDim / 2, cols).swapaxes(1, 2).reshape(rows, cols)
            var expected = new float[w.Length];
            int half = headDim / 2, k = 0;
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++)
                    for (int s = 0; s < 2; s++)
                        for (int c = 0; c < cols; c++)
                            expected[k++] = w[((h * 2 + s) * half + i) * cols + c];
            Assert.Equal(expected, permuted);
            Assert.Equal(w, GgufPermute.Unpermute<float>(permuted, rows, cols, heads));
            Assert.Equal(w, GgufPermute.Permute<float>(GgufPermute.Unpermute<float>(w, rows, cols, heads), rows, cols, heads));
        }
    }

    [Fact]
    public void An_F32_file_reads_back_every_tensor_of_its_checkpoint_bit_for_bit()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.F32, GgufFiles.Small);
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        // The metadata holds epsilon as float32 and no dtype; the rest of the shape is the same.
        static string Shape(LlamaConfig c) => (c with { TorchDtype = null, RmsNormEps = (float)c.RmsNormEps }).ToJson().ToJsonString();
        Assert.Equal(Shape(src.Config), Shape(gguf.Config));
        Assert.Equal("llama", gguf.Architecture);
        foreach (var t in LlamaTensors.Expected(src.Config))
        {
            Assert.Equal(src.ReadFloat32(t.Name), gguf.Tensors.ReadFloat32(t.Name));
            var raw = new byte[src.Get(t.Name, "src").ByteLength];
            gguf.Tensors.ReadRaw(t.Name, raw);
            var expected = new byte[raw.Length];
            src.ReadRaw(t.Name, expected);
            Assert.Equal(expected, raw);
        }
        // q and k are stored permuted in the file, everything else as is.
        Assert.False(gguf.Tensors.IsStoredAsIs(LlamaTensors.Attn(0, 'q')));
        Assert.False(gguf.Tensors.IsStoredAsIs(LlamaTensors.Attn(1, 'k')));
        Assert.True(gguf.Tensors.IsStoredAsIs(LlamaTensors.Attn(0, 'v')));
    }

    [Fact]
    public void Qwen2_files_keep_their_row_order_and_their_biases()
    {
        using var dir = new ScratchDir();
        var options = GgufFiles.Small with { AttentionBias = true, Architecture = "Qwen2ForCausalLM", Tied = true };
        string file = GgufFiles.Synthetic(dir, GgmlType.F32, options);
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        Assert.Equal("qwen2", gguf.Architecture);
        Assert.True(gguf.Config.AttentionBias);
        Assert.True(gguf.Config.TieWordEmbeddings);
        Assert.True(gguf.Tensors.IsStoredAsIs(LlamaTensors.Attn(0, 'q')));
        foreach (var t in LlamaTensors.Expected(src.Config))
            Assert.Equal(src.ReadFloat32(t.Name), gguf.Tensors.ReadFloat32(t.Name));
    }

    [Fact]
    public void Llama_biases_are_unpermuted_with_their_weights()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.F16, GgufFiles.Small with { AttentionBias = true });
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        Assert.True(gguf.Config.AttentionBias);
        foreach (var name in new[] { LlamaTensors.AttnBias(0, 'q'), LlamaTensors.AttnBias(0, 'k'), LlamaTensors.AttnBias(1, 'v') })
            Assert.Equal(src.ReadFloat32(name), gguf.Tensors.ReadFloat32(name));
        // F16 matrices are the checkpoint's values rounded to fp16, exactly.
        var q = src.ReadFloat32(LlamaTensors.Attn(1, 'q'));
        Assert.Equal(q.Select(x => (float)(Half)x).ToArray(), gguf.Tensors.ReadFloat32(LlamaTensors.Attn(1, 'q')));
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 8)]
    [InlineData(GgmlType.Q4_0, 4)]
    public void Q8_0_and_Q4_0_map_onto_MatMulNBits_blocks_that_dequantize_exactly_as_ggml(GgmlType type, int bits)
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, type, GgufFiles.Small);
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        foreach (string name in QuantizationScheme.LinearWeights(1).Append(LlamaTensors.LmHead))
        {
            var ggml = gguf.Tensors.ReadFloat32(name); // ggml's dequantization, un-permuted
            var m = gguf.Tensors.ReadNative(name, bits)!;
            Assert.Equal((bits, 32), (m.Bits, m.BlockSize));
            Assert.Equal(ggml, BlockQuantizer.Dequantize(m));
            // and ggml's dequantization is within half a step of the original weights
            var w = src.ReadFloat32(name);
            float amax = w.Max(Math.Abs);
            // Q8_0 rounds to the nearest step; Q4_0's grid runs from -8 to 7 steps, so the end opposite the block's
            // largest magnitude is clipped by up to one step.
            float bound = bits == 8 ? amax / 127 * 0.51f : amax / 8 * 1.01f;
            for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(w[i] - ggml[i]) <= bound + 1e-3f, $"{name}[{i}]: {w[i]} vs {ggml[i]}");
        }
        Assert.Null(gguf.Tensors.ReadNative(LlamaTensors.Attn(0, 'q'), 12 - bits));
    }

    [Fact]
    public void Q4_K_dequantizes_within_its_sub_block_steps()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.Q4_K, GgufFiles.Small);
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        Assert.Equal(GgmlType.Q4_K, gguf.Tensors.Tensor(LlamaTensors.Attn(0, 'q')).Type);
        foreach (string name in QuantizationScheme.LinearWeights(0))
        {
            var w = src.ReadFloat32(name);
            var back = gguf.Tensors.ReadFloat32(name);
            for (int b = 0; b < w.Length / 32; b++)
            {
                var block = w.AsSpan(b * 32, 32);
                float range = Math.Max(0, block.ToArray().Max()) - Math.Min(0, block.ToArray().Min());
                // Half a 4-bit step, plus the 6-bit rounding of the scale and min (at most 1/63 of the range each).
                float bound = range / 15 * 0.5f + range * 2f / 63 * 1.1f + 1e-4f;
                for (int i = 0; i < 32; i++)
                    Assert.True(Math.Abs(block[i] - back[b * 32 + i]) <= bound, $"{name}[{b * 32 + i}]: {block[i]} vs {back[b * 32 + i]} (bound {bound})");
            }
        }
    }

    [Fact]
    public void Stories260K_tokenizer_from_the_gguf_metadata_encodes_like_the_original()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Stories(dir, GgmlType.F32);
        string tokDir = dir.Sub("tok");
        Directory.CreateDirectory(tokDir);
        using (var gguf = GgufCheckpoint.Open(file)) GgufTokenizerFiles.Write(gguf.Metadata, gguf.Config, tokDir);
        var original = TokenizerLoader.Load(TestModels.Stories260K());
        var imported = TokenizerLoader.Load(tokDir);
        Assert.Equal(original.BosId, imported.BosId);
        // GGUF holds one EOS id (generation_config.json's extra stop id 1 has no key there).
        Assert.Equal([2], imported.EosIds);
        foreach (string text in TokenizerSamples)
        {
            Assert.Equal(original.Encode(text), imported.Encode(text));
            Assert.Equal(text, imported.Decode(imported.Encode(text)));
        }
        Assert.Equal(File.ReadAllText(Path.Combine(TestModels.Stories260K(), "chat_template.jinja")),
            System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(tokDir, "tokenizer_config.json")))!["chat_template"]!.GetValue<string>());
    }

    [Fact]
    public void Synthetic_tokenizer_from_the_gguf_metadata_encodes_like_the_original()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.F16);
        string tokDir = dir.Sub("tok");
        Directory.CreateDirectory(tokDir);
        using (var gguf = GgufCheckpoint.Open(file)) GgufTokenizerFiles.Write(gguf.Metadata, gguf.Config, tokDir);
        var original = TokenizerLoader.Load(dir.Sub("model-src"));
        var imported = TokenizerLoader.Load(tokDir);
        foreach (string text in TokenizerSamples) Assert.Equal(original.Encode(text), imported.Encode(text));
    }

    internal static readonly string[] TokenizerSamples =
    [
        "Once upon a time, there was a little girl named Lily.",
        "  two  spaces ",
        "The little dog's ball went \u201Cup\u201D\u2014very high\u2026",
        "emoji 😀 and 中文",
        "a\nb\ttab 0123456789",
        "",
    ];

    [Fact]
    public void Importing_an_F32_file_gives_the_package_of_its_checkpoint()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.F32, GgufFiles.Small);
        var fromGguf = ModelImporter.Import(file, dir.Sub("from-gguf"));
        var fromHf = ModelImporter.Import(dir.Sub("model-src"), dir.Sub("from-hf"));
        Assert.Equal("gguf", fromGguf.Manifest.Source.Kind);
        Assert.Equal("model-F32", fromGguf.Manifest.Name);
        Assert.Equal("none", fromGguf.Manifest.Quantization);
        Assert.Equal(fromHf.Manifest.ParameterCount, fromGguf.Manifest.ParameterCount);
        foreach (var (a, b) in fromHf.Manifest.WeightFiles.Zip(fromGguf.Manifest.WeightFiles))
            Assert.Equal(a.Sha256, b.Sha256);
        Assert.NotNull(TokenizerLoader.Load(dir.Sub("from-gguf")));
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 8)]
    [InlineData(GgmlType.Q4_0, 4)]
    [InlineData(GgmlType.Q4_K, 4)]
    public void A_quantized_file_keeps_its_scheme_and_the_package_dequantizes_to_the_files_values(GgmlType type, int bits)
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, type, GgufFiles.Small);
        var package = ModelImporter.Import(file, dir.Sub("pkg"));
        Assert.Equal($"int{bits}", package.Manifest.Quantization);
        Assert.Equal(32, package.Manifest.Quant!.BlockSize);
        Assert.True(package.Manifest.Quant.QuantizedHead);
        Assert.Equal(TensorDType.F32, package.DType);
        using var gguf = GgufCheckpoint.Open(file);
        using var tensors = package.OpenAll();
        using var view = new DequantizedTensorSource(tensors, package.Config);
        foreach (var t in LlamaTensors.Expected(package.Config))
        {
            var expected = gguf.Tensors.ReadFloat32(t.Name);
            var actual = view.ReadFloat32(t.Name);
            if (type != GgmlType.Q4_K || t.Shape.Length == 1 || t.Name == LlamaTensors.Embed)
            {
                Assert.Equal(expected, actual); // direct: not a value changes
                continue;
            }
            // Q4_K is requantized from its dequantized values: within half a step of an int4 block-32 grid.
            for (int b = 0; b < expected.Length / 32; b++)
            {
                var block = expected.AsSpan(b * 32, 32).ToArray();
                float step = (Math.Max(0, block.Max()) - Math.Min(0, block.Min())) / 15;
                for (int i = 0; i < 32; i++) Assert.True(Math.Abs(block[i] - actual[b * 32 + i]) <= step * 0.501f + 1e-6f);
            }
        }
    }

    [Fact]
    public void Quant_on_a_float_file_quantizes_as_for_safetensors_and_on_a_quantized_file_must_match_it()
    {
        using var dir = new ScratchDir();
        string f16 = GgufFiles.Synthetic(dir, GgmlType.F16, GgufFiles.Small);
        var scheme = new QuantizationScheme(4, 64) { FloatLayers = [1] };
        var package = ModelImporter.Import(f16, dir.Sub("f16-int4"), new ImportOptions { Quantization = scheme });
        Assert.Equal("int4", package.Manifest.Quantization);
        Assert.Equal(64, package.Manifest.Quant!.BlockSize);
        Assert.Equal([1], package.Manifest.Quant.FloatLayers);
        Assert.Equal(TensorDType.F16, package.DType);

        string q8 = GgufFiles.Synthetic(dir, GgmlType.Q8_0, GgufFiles.Small);
        var e = Assert.Throws<ModelFormatException>(() =>
            ModelImporter.Import(q8, dir.Sub("q8-int4"), new ImportOptions { Quantization = new QuantizationScheme(4, 32) }));
        Assert.Contains("already quantized (Q8_0 projections, imported as int8 block 32)", e.Message);
        Assert.False(Directory.Exists(dir.Sub("q8-int4")));
        var same = ModelImporter.Import(q8, dir.Sub("q8-int8"), new ImportOptions { Quantization = new QuantizationScheme(8, 32) { FloatLayers = [0] } });
        Assert.Equal([0], same.Manifest.Quant!.FloatLayers);
    }

    [Fact]
    public void A_tied_model_without_output_weight_imports_with_a_tied_head()
    {
        using var dir = new ScratchDir();
        string file = GgufFiles.Synthetic(dir, GgmlType.Q8_0, GgufFiles.Small with { Tied = true });
        using (var gguf = GgufCheckpoint.Open(file))
        {
            Assert.False(gguf.File.Tensors.ContainsKey("output.weight"));
            Assert.True(gguf.Config.TieWordEmbeddings);
        }
        var package = ModelImporter.Import(file, dir.Sub("pkg"));
        Assert.True(package.Config.TieWordEmbeddings);
        Assert.False(package.Manifest.Quant!.QuantizedHead);
    }

    /// <summary>A Q4_K_M-like file: Q4_K matrices, Q6_K for attn_v, ffn_down and the head, as llama.cpp mixes them.</summary>
    private static string MixedFile(ScratchDir dir)
    {
        string f32 = GgufFiles.Synthetic(dir, GgmlType.F32, GgufFiles.Small);
        using var f = GgufFile.Open(f32);
        var w = new GgufWriter();
        foreach (var (key, value) in f.Metadata) w.Add(key, value);
        foreach (var t in f.Tensors.Values.OrderBy(t => t.Offset))
        {
            var values = new float[t.ElementCount];
            GgmlTypes.Dequantize(t.Type, f.Bytes(t, 0, (int)t.ByteLength), values);
            var type = t.Dims.Length == 1 ? GgmlType.F32
                : t.Name.Contains("attn_v", StringComparison.Ordinal) || t.Name.Contains("ffn_down", StringComparison.Ordinal) || t.Name == "output.weight" ? GgmlType.Q6_K
                : GgmlType.Q4_K;
            w.AddTensor(t.Name, type, t.Shape, values);
        }
        string path = dir.Sub("mixed.gguf");
        w.Write(path);
        return path;
    }

    [Fact]
    public void Q6_K_dequantizes_within_its_sub_block_steps()
    {
        using var dir = new ScratchDir();
        string file = MixedFile(dir);
        using var src = HfCheckpoint.Open(dir.Sub("model-src"));
        using var gguf = GgufCheckpoint.Open(file);
        foreach (string name in new[] { LlamaTensors.Attn(0, 'v'), LlamaTensors.Mlp(1, "down"), LlamaTensors.LmHead })
        {
            Assert.Equal(GgmlType.Q6_K, gguf.Tensors.Tensor(name).Type);
            var w = src.ReadFloat32(name);
            var back = gguf.Tensors.ReadFloat32(name);
            for (int sb = 0; sb < w.Length / 256; sb++)
            {
                var super = w.AsSpan(sb * 256, 256).ToArray();
                float maxStep = super.Max(Math.Abs) / 31;
                for (int j = 0; j < 16; j++)
                {
                    float step = super.AsSpan(16 * j, 16).ToArray().Max(Math.Abs) / 31;
                    // Half a step, plus the int8 rounding of the sub-block scale over up to 32 steps.
                    float bound = step * 0.5f + 32 * maxStep / 127 * 0.51f + 1e-3f * maxStep;
                    for (int l = 0; l < 16; l++)
                    {
                        int i = sb * 256 + 16 * j + l;
                        Assert.True(Math.Abs(w[i] - back[i]) <= bound, $"{name}[{i}]: {w[i]} vs {back[i]} (bound {bound})");
                    }
                }
            }
        }
    }

    [Fact]
    public void A_mixed_Q4_K_and_Q6_K_file_imports_as_int4_with_every_projection_requantized()
    {
        using var dir = new ScratchDir();
        string file = MixedFile(dir);
        var package = ModelImporter.Import(file, dir.Sub("pkg"));
        Assert.Equal("int4", package.Manifest.Quantization);
        Assert.Equal("q4_k+q6_k+f32", package.Manifest.Source.DType);
        Assert.True(package.Manifest.Quant!.QuantizedHead);
        Assert.Empty(package.Manifest.Quant.FloatLayers);
        using var gguf = GgufCheckpoint.Open(file);
        using var tensors = package.OpenAll();
        using var view = new DequantizedTensorSource(tensors, package.Config);
        Assert.Equal(2 * 7 + 1, view.QuantizedNames.Count);
        foreach (string name in QuantizationScheme.LinearWeights(0).Append(LlamaTensors.LmHead))
        {
            var expected = gguf.Tensors.ReadFloat32(name);
            var actual = view.ReadFloat32(name);
            for (int b = 0; b < expected.Length / 32; b++)
            {
                var block = expected.AsSpan(b * 32, 32).ToArray();
                float step = (Math.Max(0, block.Max()) - Math.Min(0, block.Min())) / 15;
                for (int i = 0; i < 32; i++) Assert.True(Math.Abs(block[i] - actual[b * 32 + i]) <= step * 0.501f + 1e-6f);
            }
        }
    }
}
