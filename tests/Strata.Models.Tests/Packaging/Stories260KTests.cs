using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Tests.Checkpoints;
using Xunit.Abstractions;

namespace Strata.Models.Tests.Packaging;

/// <summary>The real stories260K checkpoint, when this machine has it (the tests pass trivially otherwise).</summary>
public class Stories260KTests(ITestOutputHelper output)
{
    private string Find()
    {
        string path = TestModels.Stories260K();
        output.WriteLine($"using {path}");
        return path;
    }

    [Fact]
    public void Opens_with_47_tied_tensors()
    {
        string path = Find();
        using var ckpt = HfCheckpoint.Open(path);
        Assert.Equal(47, ckpt.Names.Count);
        Assert.True(ckpt.Config.TieWordEmbeddings);
        Assert.DoesNotContain(LlamaTensors.LmHead, ckpt.Names);
        Assert.Equal(260_032, ckpt.Names.Sum(n => ckpt.Get(n, path).ElementCount));
    }

    [Fact]
    public void Imports_to_a_package_that_reads_back_identically()
    {
        string path = Find();
        using var dir = new ScratchDir();
        var package = ModelImporter.Import(path, dir.Sub("pkg"));
        Assert.Equal("stories260K", package.Name);
        Assert.Equal(5, package.Layers.Count);
        Assert.Equal(260_032, package.Manifest.ParameterCount);
        Assert.Contains(package.Manifest.Files, f => f.File == "tokenizer.model");

        using var src = HfCheckpoint.Open(path);
        using var pkg = ModelPackage.Open(dir.Sub("pkg")).OpenAll();
        Assert.Equal(src.Names.Order(StringComparer.Ordinal), pkg.Names.Order(StringComparer.Ordinal));
        foreach (var name in src.Names)
            Assert.Equal(PackageAssert.Raw(src, name), PackageAssert.Raw(pkg, name));
        foreach (var f in new[] { "tokenizer.json", "tokenizer.model", "config.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(path, f)), File.ReadAllBytes(Path.Combine(dir.Sub("pkg"), f)));
    }
}
