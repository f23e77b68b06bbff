using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;

namespace Strata.Models.Tests.Packaging;

public class PackageVerificationTests
{
    private static ModelPackage Imported(ScratchDir dir, bool tied = false)
    {
        SyntheticCheckpoint.Write(new SyntheticOptions { Layers = 4, Tied = tied }, dir.Sub("src"));
        return ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"));
    }

    [Fact]
    public void A_flipped_byte_in_a_layer_file_is_refused_naming_the_file()
    {
        using var dir = new ScratchDir();
        Imported(dir);
        PackageAssert.FlipByte(Path.Combine(dir.Sub("pkg"), "layers", "layer-00002.safetensors"));
        var package = ModelPackage.Open(dir.Sub("pkg"));
        var e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(1, 3, false, false));
        Assert.Contains("layer-00002.safetensors", e.Message);
        Assert.Contains("sha256 mismatch: expected ", e.Message);
        Assert.Contains(", got ", e.Message);
        Assert.Throws<ModelFormatException>(() => package.OpenAll());
        Assert.Throws<ModelFormatException>(() => ModelLoader.Open(dir.Sub("pkg")).Tensors);

        // Without verification only sizes are checked.
        using var unchecked_ = ModelPackage.Open(dir.Sub("pkg"), verify: false).OpenTensors(2, 3, false, false);
        Assert.Contains(LlamaTensors.InputNorm(2), unchecked_.Names);
    }

    [Fact]
    public void A_layer_range_opens_and_verifies_only_its_own_files()
    {
        using var dir = new ScratchDir();
        Imported(dir);
        PackageAssert.FlipByte(Path.Combine(dir.Sub("pkg"), "layers", "layer-00003.safetensors"));
        PackageAssert.FlipByte(Path.Combine(dir.Sub("pkg"), "head.safetensors"));
        var package = ModelPackage.Open(dir.Sub("pkg"));

        using var first = package.OpenTensors(0, 2, includeEmbedding: true, includeHead: false);
        var expected = LlamaTensors.Expected(package.Config).Where(t => t.Layer is 0 or 1 || t.Name == LlamaTensors.Embed).Select(t => t.Name);
        Assert.Equal(expected.Order(StringComparer.Ordinal), first.Names.Order(StringComparer.Ordinal));
        using var middle = package.OpenTensors(2, 3, includeEmbedding: false, includeHead: false);
        Assert.All(middle.Names, n => Assert.Equal(2, LlamaTensors.LayerOf(n)));

        var e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(3, 4, false, false));
        Assert.Contains("layer-00003.safetensors", e.Message);
        e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(4, 4, false, includeHead: true));
        Assert.Contains("head.safetensors", e.Message);

        using var loaded = ModelLoader.Open(dir.Sub("pkg"));
        using var viaLoader = loaded.OpenTensors(1, 3, false, false);
        Assert.Equal(2 * 9, viaLoader.Names.Count);
    }

    [Fact]
    public void A_truncated_file_is_refused_naming_the_file()
    {
        using var dir = new ScratchDir();
        Imported(dir, tied: true);
        string path = Path.Combine(dir.Sub("pkg"), "embed.safetensors");
        using (var f = new FileStream(path, FileMode.Open)) f.SetLength(f.Length - 10);
        var package = ModelPackage.Open(dir.Sub("pkg"));
        var e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(0, 1, includeEmbedding: true, includeHead: false));
        Assert.Contains("embed.safetensors", e.Message);
        Assert.Contains("truncated", e.Message);
        // A tied head needs the embedding too.
        Assert.Throws<ModelFormatException>(() => package.OpenTensors(4, 4, includeEmbedding: false, includeHead: true));
        using var layers = package.OpenTensors(0, 4, includeEmbedding: false, includeHead: false);
        Assert.DoesNotContain(LlamaTensors.Embed, layers.Names);
    }

    [Fact]
    public void A_deleted_or_altered_tokenizer_file_fails_open()
    {
        using var dir = new ScratchDir();
        Imported(dir);
        File.AppendAllText(Path.Combine(dir.Sub("pkg"), "tokenizer.json"), " ");
        var e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(dir.Sub("pkg")));
        Assert.Contains("tokenizer.json", e.Message);
        File.Delete(Path.Combine(dir.Sub("pkg"), "tokenizer.json"));
        e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(dir.Sub("pkg")));
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void A_file_swapped_for_another_valid_layer_is_caught()
    {
        using var dir = new ScratchDir();
        Imported(dir);
        string layers = Path.Combine(dir.Sub("pkg"), "layers");
        File.Copy(Path.Combine(layers, "layer-00000.safetensors"), Path.Combine(layers, "layer-00001.safetensors"), overwrite: true);
        var package = ModelPackage.Open(dir.Sub("pkg"));
        var e = Assert.Throws<ModelFormatException>(() => package.OpenTensors(1, 2, false, false));
        Assert.Contains("layer-00001.safetensors", e.Message);
        using var lenient = ModelPackage.Open(dir.Sub("pkg"), verify: false).OpenTensors(0, 1, false, false);
        e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(dir.Sub("pkg"), verify: false).OpenTensors(1, 2, false, false));
        Assert.Contains(LlamaTensors.InputNorm(1), e.Message);
    }
}
