using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;
using Strata.Models.Tests.Synthetic;

namespace Strata.Models.Tests.Packaging;

public class ModelImporterTests
{
    private static readonly SyntheticOptions Untied = new() { Layers = 3, AttentionBias = true };

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Imported_tensors_equal_the_source_after_dtype_rounding(TensorDType dtype)
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Untied, dir.Sub("src"));
        var package = ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"), new ImportOptions { DType = dtype });

        Assert.Equal(dtype, package.DType);
        Assert.Equal(PackageManifest.TorchDtypeName(dtype), package.Config.TorchDtype);
        Assert.Equal(3, package.Layers.Count);
        using var src = HfCheckpoint.Open(dir.Sub("src"));
        using var pkg = package.OpenAll();
        Assert.Equal(src.Names.Order(StringComparer.Ordinal), pkg.Names.Order(StringComparer.Ordinal));
        foreach (var name in src.Names)
        {
            var expected = src.ReadFloat32(name);
            // The exact value the conversion must produce: round once from float32.
            var rounded = new byte[expected.Length * dtype.Size()];
            TensorDTypes.FromFloat32(dtype, expected, rounded);
            TensorDTypes.ToFloat32(dtype, rounded, expected);
            var actual = pkg.ReadFloat32(name);
            Assert.Equal(expected, actual);
            Assert.Equal(dtype, pkg.Get(name, "pkg").DType);
        }
        Assert.Equal(SyntheticCheckpoint.ParameterCount(Untied), package.Manifest.ParameterCount);
    }

    [Fact]
    public void Sharded_bf16_source_keeps_its_bytes_and_widens_exactly()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Untied with { DType = TensorDType.BF16, Shards = 3 }, dir.Sub("src"));
        var same = ModelImporter.Import(dir.Sub("src"), dir.Sub("same"));
        var wide = ModelImporter.Import(dir.Sub("src"), dir.Sub("wide"), new ImportOptions { DType = TensorDType.F32 });
        Assert.Equal(TensorDType.BF16, same.DType);
        Assert.Equal("bf16", same.Manifest.Source.DType);
        Assert.Equal(3, same.Manifest.Source.Files.Count);

        using var src = HfCheckpoint.Open(dir.Sub("src"));
        using var a = same.OpenAll();
        using var b = wide.OpenAll();
        foreach (var name in src.Names)
        {
            Assert.Equal(PackageAssert.Raw(src, name), PackageAssert.Raw(a, name));
            Assert.Equal(src.ReadFloat32(name), b.ReadFloat32(name));
        }
    }

    [Fact]
    public void Importing_twice_gives_identical_packages()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions { Tied = true, Shards = 2 }, dir.Sub("src"));
        ModelImporter.Import(dir.Sub("src"), dir.Sub("p1"), new ImportOptions { DType = TensorDType.F16 });
        ModelImporter.Import(dir.Sub("src"), dir.Sub("p2"), new ImportOptions { DType = TensorDType.F16 });
        PackageAssert.SameTree(dir.Sub("p1"), dir.Sub("p2"));
    }

    [Fact]
    public void Package_layout_matches_the_manifest()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions { Tied = true }, dir.Sub("src"));
        var package = ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"), new ImportOptions { Name = "tiny-test" });
        var files = PackageAssert.Files(dir.Sub("pkg"));
        Assert.Contains("strata-model.json", files);
        Assert.Contains("embed.safetensors", files);
        Assert.Contains("head.safetensors", files);
        Assert.Contains(Path.Combine("layers", "layer-00001.safetensors"), files);
        Assert.Contains("tokenizer.json", files);
        Assert.Contains("config.json", files);
        Assert.Contains("generation_config.json", files);
        Assert.Equal("tiny-test", package.Name);
        Assert.Equal("none", package.Manifest.Quantization);
        Assert.Equal("layers/layer-00001.safetensors", package.Layers[1].Entry.File);
        foreach (var f in package.Manifest.WeightFiles.Concat(package.Manifest.Files))
        {
            Assert.Equal(new FileInfo(package.PathOf(f)).Length, f.Bytes);
            Assert.Equal(FileHash.Sha256(package.PathOf(f)), f.Sha256);
        }
        // A tied head file holds only the final norm.
        using var head = package.OpenTensors(2, 2, includeEmbedding: false, includeHead: true);
        Assert.Equal([LlamaTensors.Embed, LlamaTensors.FinalNorm], head.Names.Order(StringComparer.Ordinal));
        Assert.Equal(64, package.Manifest.Head.Parameters);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));
    }

    [Fact]
    public void A_non_empty_destination_is_refused_unless_overwriting_a_package()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions(), dir.Sub("src"));
        Directory.CreateDirectory(dir.Sub("busy"));
        File.WriteAllText(Path.Combine(dir.Sub("busy"), "notes.txt"), "keep me");
        Assert.Throws<IOException>(() => ModelImporter.Import(dir.Sub("src"), dir.Sub("busy")));
        var e = Assert.Throws<IOException>(() => ModelImporter.Import(dir.Sub("src"), dir.Sub("busy"), new ImportOptions { Overwrite = true }));
        Assert.Contains("not a Strata model package", e.Message);
        Assert.Equal("keep me", File.ReadAllText(Path.Combine(dir.Sub("busy"), "notes.txt")));

        Directory.CreateDirectory(dir.Sub("empty"));
        ModelImporter.Import(dir.Sub("src"), dir.Sub("empty"));
        Assert.Throws<IOException>(() => ModelImporter.Import(dir.Sub("src"), dir.Sub("empty")));
        var again = ModelImporter.Import(dir.Sub("src"), dir.Sub("empty"), new ImportOptions { Overwrite = true, DType = TensorDType.BF16 });
        Assert.Equal(TensorDType.BF16, ModelPackage.Open(dir.Sub("empty")).DType);
        Assert.Equal(TensorDType.BF16, again.DType);
        Assert.Equal(["busy", "empty", "src"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void A_malformed_source_leaves_nothing_behind()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions(), dir.Sub("src"));
        BrokenFiles.Rewrite(dir.Sub("src"), n => n != LlamaTensors.Mlp(1, "gate"));
        var e = Assert.Throws<ModelFormatException>(() => ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg")));
        Assert.Contains(LlamaTensors.Mlp(1, "gate"), e.Message);
        Assert.Equal(["src"], Directory.GetDirectories(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Progress_is_monotonic_names_tensors_and_reaches_100_percent()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(Untied, dir.Sub("src"));
        var reports = new List<ImportProgress>();
        ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"), new ImportOptions { DType = TensorDType.F16 }, new SyncProgress<ImportProgress>(reports.Add));
        Assert.Equal(0, reports[0].BytesDone);
        Assert.Equal(1.0, reports[^1].Fraction);
        Assert.Equal(reports[^1].TotalBytes, reports[^1].BytesDone);
        Assert.Equal(SyntheticCheckpoint.ParameterCount(Untied) * 2, reports[^1].TotalBytes);
        Assert.Equal(reports.Select(r => r.BytesDone).Order(), reports.Select(r => r.BytesDone));
        Assert.Contains(reports, r => r.CurrentTensor == LlamaTensors.LmHead);
    }
}
