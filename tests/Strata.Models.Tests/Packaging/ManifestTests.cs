using System.Text.Json.Nodes;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;

namespace Strata.Models.Tests.Packaging;

public class ManifestTests
{
    private static string Package(ScratchDir dir)
    {
        SyntheticCheckpoint.Write(new SyntheticOptions(), dir.Sub("src"));
        ModelImporter.Import(dir.Sub("src"), dir.Sub("pkg"));
        return dir.Sub("pkg");
    }

    private static ModelFormatException Broken(ScratchDir dir, Action<JsonObject> edit)
    {
        string pkg = Package(dir);
        string path = Path.Combine(pkg, PackageManifest.FileName);
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(root);
        File.WriteAllText(path, root.ToJsonString());
        var e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(pkg));
        Assert.Contains("strata-model.json", e.Message);
        return e;
    }

    [Fact]
    public void Manifest_round_trips()
    {
        using var dir = new ScratchDir();
        var package = ModelPackage.Open(Package(dir));
        var text = File.ReadAllText(package.ManifestPath);
        Assert.Equal(text, package.Manifest.ToJsonText());
        Assert.DoesNotContain("created", text);
        var json = JsonNode.Parse(text)!;
        Assert.Equal(1, json["format_version"]!.GetValue<int>());
        Assert.Equal("fp32", json["dtype"]!.GetValue<string>());
        Assert.Equal("none", json["quantization"]!.GetValue<string>());
        Assert.Equal("LlamaForCausalLM", json["architecture"]!.GetValue<string>());
        Assert.Equal(package.Manifest.ParameterCount, json["parameter_count"]!.GetValue<long>());
    }

    [Fact]
    public void Bad_json_is_refused()
    {
        using var dir = new ScratchDir();
        string pkg = Package(dir);
        File.WriteAllText(Path.Combine(pkg, PackageManifest.FileName), "{\"format_version\": 1,");
        var e = Assert.Throws<ModelFormatException>(() => ModelPackage.Open(pkg));
        Assert.Contains("strata-model.json", e.Message);
        Assert.Contains("invalid JSON", e.Message);
    }

    [Theory]
    [InlineData("dtype")]
    [InlineData("name")]
    [InlineData("config")]
    [InlineData("layers")]
    [InlineData("format_version")]
    [InlineData("embedding")]
    [InlineData("files")]
    public void A_missing_field_is_named(string field)
    {
        using var dir = new ScratchDir();
        var e = Broken(dir, m => m.Remove(field));
        Assert.Equal(field, e.Item);
    }

    [Fact]
    public void Nested_fields_are_named_with_their_path()
    {
        using var dir = new ScratchDir();
        Assert.Equal("layers[1].sha256", Broken(dir, m => m["layers"]![1]!.AsObject().Remove("sha256")).Item);
        using var dir2 = new ScratchDir();
        Assert.Equal("config.hidden_size", Broken(dir2, m => m["config"]!.AsObject().Remove("hidden_size")).Item);
        using var dir3 = new ScratchDir();
        Assert.Equal("head.file", Broken(dir3, m => m["head"]!["file"] = "../outside.safetensors").Item);
        using var dir4 = new ScratchDir();
        Assert.Equal("layers", Broken(dir4, m => m["layers"]!.AsArray().RemoveAt(1)).Item);
    }

    [Theory]
    [InlineData("fp8")]
    [InlineData("int4")]
    public void An_unknown_dtype_is_named(string dtype)
    {
        using var dir = new ScratchDir();
        var e = Broken(dir, m => m["dtype"] = dtype);
        Assert.Equal("dtype", e.Item);
        Assert.Contains(dtype, e.Message);
    }

    [Fact]
    public void Unsupported_version_and_quantization_are_refused()
    {
        using var dir = new ScratchDir();
        Assert.Equal("format_version", Broken(dir, m => m["format_version"] = 2).Item);
        using var dir2 = new ScratchDir();
        Assert.Equal("quantization", Broken(dir2, m => m["quantization"] = "gptq").Item);
        using var dir3 = new ScratchDir();
        Assert.Equal("quantization_scheme", Broken(dir3, m => m["quantization"] = "int4").Item);
    }
}
