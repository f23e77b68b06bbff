using System.Text.Json.Nodes;
using Strata.Models.Checkpoints;
using Strata.Models.Synthetic;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>Every malformed checkpoint fails to open with a message naming the file and the tensor or field.</summary>
public class MalformedCheckpointTests
{
    private static string Tiny(ScratchDir dir, int shards = 1)
    {
        string path = dir.Sub("model");
        SyntheticCheckpoint.Write(new SyntheticOptions { Shards = shards }, path);
        return path;
    }

    private static ModelFormatException Fails(string dir, params string[] mentions)
    {
        var e = Assert.Throws<ModelFormatException>(() => HfCheckpoint.Open(dir).Dispose());
        foreach (var m in mentions) Assert.Contains(m, e.Message, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void Truncated_data_names_the_file_and_the_tensor_cut_off()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        string file = Path.Combine(model, "model.safetensors");
        using (var f = new FileStream(file, FileMode.Open)) f.SetLength(f.Length - 100);
        Fails(model, "model.safetensors", "lm_head.weight", "truncated");
    }

    [Fact]
    public void Header_length_past_the_end_is_refused()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        string file = Path.Combine(model, "model.safetensors");
        var bytes = File.ReadAllBytes(file).AsSpan(0, 4096).ToArray();
        BitConverter.GetBytes(1_000_000UL).CopyTo(bytes, 0);
        File.WriteAllBytes(file, bytes);
        Fails(model, "model.safetensors", "header length");
    }

    [Fact]
    public void Bad_header_json_is_refused()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        BrokenFiles.WriteRaw(Path.Combine(model, "model.safetensors"), "{\"model.embed_tokens.weight\": {\"dtype\": ", 64);
        Fails(model, "model.safetensors", "JSON");
    }

    [Theory]
    [InlineData("I64")]
    [InlineData("F8_E4M3")]
    public void Unknown_dtype_names_the_tensor_and_dtype(string dtype)
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        BrokenFiles.WriteRaw(Path.Combine(model, "model.safetensors"),
            $"{{\"model.embed_tokens.weight\": {{\"dtype\": \"{dtype}\", \"shape\": [2, 2], \"data_offsets\": [0, 32]}}}}", 32);
        Fails(model, "model.safetensors", "model.embed_tokens.weight", dtype);
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        const string name = "model.layers.1.mlp.up_proj.weight";
        BrokenFiles.Rewrite(model, n => n != name);
        Fails(model, "model.safetensors", name, "missing");
    }

    [Fact]
    public void Misshaped_tensor_is_named_with_both_shapes()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        const string name = "model.layers.0.self_attn.k_proj.weight";
        BrokenFiles.Rewrite(model, _ => true, (n, s) => n == name ? [s[0] * 2, s[1]] : s);
        Fails(model, "model.safetensors", name, "[64, 64]", "[32, 64]");
    }

    [Fact]
    public void Config_with_bad_json_names_config_json()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        File.WriteAllText(Path.Combine(model, "config.json"), "{\"hidden_size\": 64,");
        Fails(model, "config.json", "JSON");
    }

    [Fact]
    public void Unsupported_architecture_is_named()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        string path = Path.Combine(model, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config["architectures"] = new JsonArray("GPT2LMHeadModel");
        File.WriteAllText(path, config.ToJsonString());
        Fails(model, "config.json", "architectures", "GPT2LMHeadModel");
    }

    [Fact]
    public void Index_naming_a_missing_shard_is_refused()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir, shards: 3);
        File.Delete(Path.Combine(model, "model-00002-of-00003.safetensors"));
        Fails(model, "model.safetensors.index.json", "model-00002-of-00003.safetensors");
    }

    [Fact]
    public void Index_listing_a_tensor_absent_from_its_shard_names_shard_and_tensor()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir, shards: 3);
        string path = Path.Combine(model, "model.safetensors.index.json");
        var index = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        Assert.Equal("model-00001-of-00003.safetensors", index["weight_map"]!["model.embed_tokens.weight"]!.GetValue<string>());
        index["weight_map"]!["model.embed_tokens.weight"] = "model-00003-of-00003.safetensors";
        File.WriteAllText(path, index.ToJsonString());
        Fails(model, "model-00003-of-00003.safetensors", "model.embed_tokens.weight");
    }

    [Fact]
    public void Missing_config_is_named()
    {
        using var dir = new ScratchDir();
        string model = Tiny(dir);
        File.Delete(Path.Combine(model, "config.json"));
        Fails(model, "config.json");
    }
}
