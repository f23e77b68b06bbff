using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Quantization;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;
using Strata.Models.Tests.Packaging;

namespace Strata.Models.Tests.Quantization;

public class QuantizedImportTests
{
    // Intermediate 100: down_proj has K = 100, not a multiple of any block size.
    private static readonly SyntheticOptions Model = new() { Layers = 3, Intermediate = 100, AttentionBias = true };

    private static ModelPackage Import(ScratchDir dir, QuantizationScheme q, SyntheticOptions? options = null)
    {
        SyntheticCheckpoint.Write(options ?? Model, dir.Sub("src"));
        return ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"), new ImportOptions { Quantization = q });
    }

    [Theory]
    [InlineData(8, 32)]
    [InlineData(4, 32)]
    [InlineData(4, 64)]
    [InlineData(4, 128)]
    public void Projections_are_stored_quantized_and_dequantize_within_half_a_step(int bits, int block)
    {
        using var dir = new ScratchDir();
        var package = Import(dir, new QuantizationScheme(bits, block) { FloatLayers = [1] });
        Assert.Equal($"int{bits}", package.Manifest.Quantization);
        Assert.Equal(SyntheticCheckpoint.ParameterCount(Model), package.Manifest.ParameterCount);
        using var src = HfCheckpoint.Open(dir.Sub("src"));
        using var pkg = package.OpenAll();
        var config = package.Config;
        foreach (var t in LlamaTensors.Expected(config))
        {
            bool quantized = t.Layer is 0 or 2 && QuantizationScheme.LinearWeights(t.Layer).Contains(t.Name);
            Assert.Equal(quantized, QuantizedTensors.IsQuantized(pkg, t.Name));
            if (!quantized)
            {
                Assert.Equal(PackageAssert.Raw(src, t.Name), PackageAssert.Raw(pkg, t.Name));
                continue;
            }
            Assert.False(pkg.TryGet(t.Name, out _));
            var m = QuantizedTensors.TryRead(pkg, t.Name, (int)t.Shape[0], (int)t.Shape[1])!;
            Assert.Equal((bits, block), (m.Bits, m.BlockSize));
            var w = src.ReadFloat32(t.Name);
            var back = BlockQuantizer.Dequantize(m);
            for (int i = 0; i < w.Length; i++)
            {
                float step = m.Scales[i / m.Cols * m.BlocksPerRow + i % m.Cols / block];
                Assert.True(Math.Abs(w[i] - back[i]) <= step / 2 * 1.0001f + 1e-7f, $"{t.Name}[{i}]");
            }
        }
        Assert.False(QuantizedTensors.IsQuantized(pkg, LlamaTensors.LmHead));
    }

    [Fact]
    public void Fp16_packages_keep_fp32_scales_and_fp16_norms()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Model, dir.Sub("src"));
        var package = ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"),
            new ImportOptions { DType = TensorDType.F16, Quantization = new QuantizationScheme(8, 32) });
        using var pkg = ModelPackage.Open(dir.Sub("pkg")).OpenAll();
        Assert.Equal(TensorDType.F16, pkg.Get(LlamaTensors.InputNorm(0), "pkg").DType);
        Assert.Equal(TensorDType.F32, pkg.Get(QuantizedTensors.ScalesName(LlamaTensors.Mlp(0, "up")), "pkg").DType);
        Assert.Equal(TensorDType.U8, pkg.Get(QuantizedTensors.DataName(LlamaTensors.Mlp(0, "up"), 8), "pkg").DType);
        Assert.Equal("float16", package.Config.TorchDtype);
    }

    [Fact]
    public void Quantized_head_of_a_tied_model_is_a_quantized_copy_and_the_embedding_stays()
    {
        using var dir = new ScratchDir();
        var options = Model with { Tied = true };
        var package = Import(dir, new QuantizationScheme(4, 32) { QuantizedHead = true }, options);
        Assert.Equal(SyntheticCheckpoint.ParameterCount(options), package.Manifest.ParameterCount);
        using var head = package.OpenTensors(3, 3, includeEmbedding: false, includeHead: true);
        Assert.True(QuantizedTensors.IsQuantized(head, LlamaTensors.LmHead));
        Assert.False(head.TryGet(LlamaTensors.Embed, out _)); // the head no longer needs the embedding file
        using var all = package.OpenAll();
        Assert.Equal(TensorDType.F32, all.Get(LlamaTensors.Embed, "pkg").DType);
    }

    [Fact]
    public void Footprints_count_the_quantized_files_and_a_quantized_tied_head_once()
    {
        using var dir = new ScratchDir();
        var options = Model with { Tied = true };
        SyntheticCheckpoint.Write(options, dir.Sub("src"));
        var fp = ModelImporter.Import(dir.Sub("src"), dir.Sub("fp")).Manifest;
        var q4 = ModelImporter.Import(dir.Sub("src"), dir.Sub("q4"), new ImportOptions { Quantization = new QuantizationScheme(4, 32) }).Manifest;
        var q4h = ModelImporter.Import(dir.Sub("src"), dir.Sub("q4h"), new ImportOptions { Quantization = new QuantizationScheme(4, 32) { QuantizedHead = true } }).Manifest;
        var f = Strata.Models.Planning.ModelFootprint.From(fp, 4);
        var f4 = Strata.Models.Planning.ModelFootprint.From(q4, 4);
        var f4h = Strata.Models.Planning.ModelFootprint.From(q4h, 4);
        Assert.Equal(q4.Layers.Select(l => l.Entry.Bytes), f4.LayerBytes);
        Assert.True(f4.LayerBytes[0] * 5 < f.LayerBytes[0], $"int4 layer {f4.LayerBytes[0]} bytes vs fp32 {f.LayerBytes[0]}");
        Assert.Equal(f.HeadBytes, f4.HeadBytes); // float head: the tied copy of the embedding
        Assert.Equal(q4h.Head.Bytes, f4h.HeadBytes); // its own quantized copy, counted once
        Assert.True(f4h.HeadBytes * 5 < f4.HeadBytes);
    }

    [Fact]
    public void Manifest_records_the_scheme_and_reads_it_back()
    {
        using var dir = new ScratchDir();
        var q = new QuantizationScheme(4, 64) { FloatLayers = [0, 2], QuantizedHead = true };
        Import(dir, q);
        string text = File.ReadAllText(Path.Combine(dir.Sub("pkg"), PackageManifest.FileName));
        Assert.Contains("\"quantization\": \"int4\"", text);
        Assert.Contains("\"block_size\": 64", text);
        var reopened = ModelPackage.Open(dir.Sub("pkg"));
        Assert.Equal(q.Bits, reopened.Manifest.Quant!.Bits);
        Assert.Equal(q.BlockSize, reopened.Manifest.Quant.BlockSize);
        Assert.Equal(q.FloatLayers, reopened.Manifest.Quant.FloatLayers);
        Assert.True(reopened.Manifest.Quant.QuantizedHead);
        Assert.Equal(text, reopened.Manifest.ToJsonText());
    }

    [Fact]
    public void Unquantized_manifest_has_no_scheme_field()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Model, dir.Sub("src"));
        var package = ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"));
        string text = File.ReadAllText(Path.Combine(dir.Sub("pkg"), PackageManifest.FileName));
        Assert.Contains("\"quantization\": \"none\"", text);
        Assert.DoesNotContain("quantization_scheme", text);
        Assert.Null(package.Manifest.Quant);
    }

    [Fact]
    public void Importing_twice_gives_identical_packages()
    {
        using var dir = new ScratchDir();
        var q = new QuantizationScheme(4, 32);
        Import(dir, q);
        ModelImporter.Import(dir.Sub("src"), dir.Sub("again"), new ImportOptions { Quantization = q });
        PackageAssert.SameTree(dir.Sub("pkg"), dir.Sub("again"));
    }

    [Fact]
    public void A_tampered_quantized_layer_is_refused()
    {
        using var dir = new ScratchDir();
        Import(dir, new QuantizationScheme(4, 32));
        PackageAssert.FlipByte(Path.Combine(dir.Sub("pkg"), "layers", "layer-00001.safetensors"));
        var package = ModelPackage.Open(dir.Sub("pkg"));
        var e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(1, 2, false, false));
        Assert.Contains("layer-00001.safetensors", e.Message);
        Assert.Contains("sha256 mismatch", e.Message);
        using var other = package.OpenTensors(0, 1, false, false);
    }

    [Fact]
    public void A_quantized_layer_file_swapped_for_a_float_one_is_refused_by_tensor()
    {
        using var dir = new ScratchDir();
        Import(dir, new QuantizationScheme(8, 32));
        SyntheticCheckpoint.Write(Model, dir.Sub("src2"));
        ModelImporter.Import(dir.Sub("src2"), dir.Sub("float"));
        // Copy a float layer in, and fix its checksum in the manifest: the tensor check still refuses it.
        string manifestPath = Path.Combine(dir.Sub("pkg"), PackageManifest.FileName);
        var manifest = PackageManifest.Parse(File.ReadAllText(manifestPath), manifestPath);
        string layer = Path.Combine(dir.Sub("pkg"), "layers", "layer-00000.safetensors");
        File.Copy(Path.Combine(dir.Sub("float"), "layers", "layer-00000.safetensors"), layer, overwrite: true);
        var entry = manifest.Layers[0].Entry with { Bytes = new FileInfo(layer).Length, Sha256 = FileHash.Sha256(layer) };
        var layers = manifest.Layers.Select(l => l.Index == 0 ? l with { Entry = entry } : l).ToList();
        File.WriteAllText(manifestPath, (manifest with { Layers = layers }).ToJsonText());
        var e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(dir.Sub("pkg")).OpenTensors(0, 1, false, false));
        Assert.Contains("layer-00000.safetensors", e.Message);
    }

    [Theory]
    [InlineData("\"quantization\": \"int4\"", "\"quantization\": \"int3\"", "quantization")]
    [InlineData("\"block_size\": 32", "\"block_size\": 48", "quantization_scheme.block_size")]
    [InlineData("\"bits\": 4", "\"bits\": 8", "quantization_scheme.bits")]
    [InlineData("\"zero_points\": true", "\"zero_points\": false", "quantization_scheme.zero_points")]
    public void Malformed_schemes_are_refused_naming_the_field(string from, string to, string field)
    {
        using var dir = new ScratchDir();
        Import(dir, new QuantizationScheme(4, 32));
        string path = Path.Combine(dir.Sub("pkg"), PackageManifest.FileName);
        string text = File.ReadAllText(path);
        Assert.Contains(from, text);
        File.WriteAllText(path, text.Replace(from, to));
        var e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(dir.Sub("pkg")));
        Assert.Equal(field, e.Item);
    }

    [Fact]
    public void Float_layers_outside_the_model_are_refused()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Model, dir.Sub("src"));
        var e = Assert.Throws<ArgumentException>(() => ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"),
            new ImportOptions { Quantization = new QuantizationScheme(4, 32) { FloatLayers = [5] } }));
        Assert.Contains("layer 5", e.Message);
        Assert.False(Directory.Exists(dir.Sub("pkg")));
    }
}

public class U8CheckpointTests
{
    [Fact]
    public void A_checkpoint_weight_stored_as_U8_is_refused_naming_the_tensor()
    {
        using var dir = new ScratchDir();
        var options = new SyntheticOptions { Layers = 1 };
        SyntheticCheckpoint.Write(options, dir.Sub("src"));
        string file = Path.Combine(dir.Sub("src"), HfCheckpoint.SingleFile);
        var writer = new SafetensorsWriter();
        using (var src = HfCheckpoint.Open(dir.Sub("src")))
        {
            foreach (string name in src.Names.Order(StringComparer.Ordinal))
            {
                var info = src.Get(name, file);
                var raw = PackageAssert.Raw(src, name);
                if (name == LlamaTensors.Mlp(0, "up"))
                    writer.Add(name, TensorDType.U8, info.Shape, (o, d) => d.Fill(7));
                else
                    writer.Add(name, info.DType, info.Shape, (o, d) => raw.AsSpan((int)o, d.Length).CopyTo(d));
            }
        }
        writer.Write(file + ".new");
        File.Move(file + ".new", file, overwrite: true);
        var e = Assert.Throws<ModelFormatException>(() => HfCheckpoint.Open(dir.Sub("src")));
        Assert.Equal(LlamaTensors.Mlp(0, "up"), e.Item);
        Assert.Contains("U8", e.Message);
    }
}
