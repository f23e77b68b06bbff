using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;

namespace Strata.Models.Tests.Packaging;

public class ModelLoaderTests
{
    [Fact]
    public void Opens_a_hugging_face_folder_and_a_package_with_the_same_tensors()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions { Layers = 3, Tied = true }, dir.Sub("hf"));
        ModelImporter.Import(dir.Sub("hf"), dir.Sub("pkg"));

        using var hf = ModelLoader.Open(dir.Sub("hf"));
        using var pkg = ModelLoader.Open(dir.Sub("pkg"));
        Assert.Null(hf.Package);
        Assert.NotNull(pkg.Package);
        Assert.Contains("Hugging Face", hf.Description);
        Assert.Contains("Strata package", pkg.Description);
        Assert.Equal(hf.Config.ToJson().ToJsonString(), pkg.Config.ToJson().ToJsonString());
        Assert.True(File.Exists(Path.Combine(hf.TokenizerDirectory, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(pkg.TokenizerDirectory, "tokenizer.json")));
        Assert.Equal(hf.Tensors.Names.Order(StringComparer.Ordinal), pkg.Tensors.Names.Order(StringComparer.Ordinal));
        foreach (var name in hf.Tensors.Names)
            Assert.Equal(PackageAssert.Raw(hf.Tensors, name), PackageAssert.Raw(pkg.Tensors, name));

        using var hfRange = hf.OpenTensors(1, 3, includeEmbedding: false, includeHead: true);
        using var pkgRange = pkg.OpenTensors(1, 3, includeEmbedding: false, includeHead: true);
        Assert.Equal(hfRange.Names.Order(StringComparer.Ordinal), pkgRange.Names.Order(StringComparer.Ordinal));
        Assert.Contains(LlamaTensors.Embed, hfRange.Names);
        Assert.DoesNotContain(LlamaTensors.InputNorm(0), hfRange.Names);
        Assert.False(hfRange.TryGet(LlamaTensors.InputNorm(0), out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => hf.OpenTensors(2, 4, false, false));
    }

    [Fact]
    public void Anything_else_is_refused_with_a_clear_message()
    {
        using var dir = new ScratchDir();
        File.WriteAllText(dir.Sub("config.json"), "{}");
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Open(dir.Path));
        Assert.Contains("not a Hugging Face model folder (config.json + model.safetensors) or a Strata package (strata-model.json)", e.Message);
        Assert.Contains(dir.Path, e.Message);
        Assert.Throws<ModelFormatException>(() => ModelLoader.Open(dir.Sub("missing")));
    }
}
