using System.Text.Json.Nodes;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Synthetic;
using Strata.Models.Tests.Checkpoints;

namespace Strata.Models.Tests.Synthetic;

public class SyntheticCheckpointTests
{
    public static TheoryData<string> Variants => ["tied", "untied", "mha", "gqa", "bias", "bf16", "f16", "sharded", "qwen2", "headdim", "rope3"];

    private static SyntheticOptions Variant(string name) => name switch
    {
        "tied" => new SyntheticOptions { Tied = true },
        "untied" => new SyntheticOptions(),
        "mha" => new SyntheticOptions { KvHeads = 4 },
        "gqa" => new SyntheticOptions { Heads = 8, KvHeads = 2 },
        "bias" => new SyntheticOptions { AttentionBias = true },
        "bf16" => new SyntheticOptions { DType = TensorDType.BF16 },
        "f16" => new SyntheticOptions { DType = TensorDType.F16, Tied = true },
        "sharded" => new SyntheticOptions { Shards = 3, DType = TensorDType.BF16 },
        "qwen2" => new SyntheticOptions { Architecture = "Qwen2ForCausalLM", Shards = 2 },
        "headdim" => new SyntheticOptions { HeadDim = 24 },
        "rope3" => new SyntheticOptions { RopeTheta = 500000, RopeScaling = new RopeScaling(8, 1, 4, 8192), MaxPositions = 4096 },
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void Written_checkpoints_open_and_their_config_round_trips(string variant)
    {
        using var dir = new ScratchDir();
        var o = Variant(variant);
        var config = SyntheticCheckpoint.Write(o, dir.Path);

        using var ckpt = HfCheckpoint.Open(dir.Path);
        Assert.Equal(config.ToJson().ToJsonString(), ckpt.Config.ToJson().ToJsonString());
        Assert.Equal(LlamaTensors.Expected(config).Count(), ckpt.Names.Count);
        Assert.Equal(o.Tied, !ckpt.Names.Contains(LlamaTensors.LmHead));
        Assert.Equal(o.AttentionBias || o.Architecture == "Qwen2ForCausalLM", ckpt.Names.Contains(LlamaTensors.AttnBias(0, 'q')));
        Assert.All(ckpt.Names, n => Assert.Equal(o.DType, ckpt.Get(n, dir.Path).DType));
        Assert.Equal(o.Shards, ckpt.Files.Count);
        Assert.Equal(1, ckpt.Config.BosTokenId);
        Assert.Equal([2], ckpt.Config.EosTokenIds);
        Assert.True(File.Exists(dir.Sub("generation_config.json")));
        Assert.True(File.Exists(dir.Sub("tokenizer.json")));
        foreach (var name in ckpt.Names)
            Assert.All(ckpt.ReadFloat32(name), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Sharded_index_lists_every_tensor_and_the_total_size()
    {
        using var dir = new ScratchDir();
        var config = SyntheticCheckpoint.Write(new SyntheticOptions { Shards = 3 }, dir.Path);
        var index = JsonNode.Parse(File.ReadAllText(dir.Sub(HfCheckpoint.IndexFile)))!;
        long expectedBytes = LlamaTensors.Expected(config).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * 4);
        Assert.Equal(expectedBytes, index["metadata"]!["total_size"]!.GetValue<long>());
        var map = index["weight_map"]!.AsObject();
        Assert.Equal(LlamaTensors.Expected(config).Select(t => t.Name).Order(StringComparer.Ordinal), map.Select(p => p.Key));
        Assert.Equal(3, map.Select(p => p.Value!.GetValue<string>()).Distinct().Count());
        Assert.False(File.Exists(dir.Sub(HfCheckpoint.SingleFile)));
    }

    [Fact]
    public void Same_seed_gives_identical_bytes_and_another_seed_differs()
    {
        using var dir = new ScratchDir();
        var o = new SyntheticOptions { Shards = 2, DType = TensorDType.BF16, AttentionBias = true };
        SyntheticCheckpoint.Write(o, dir.Sub("a"));
        SyntheticCheckpoint.Write(o, dir.Sub("b"));
        SyntheticCheckpoint.Write(o with { Seed = 2 }, dir.Sub("c"));
        var files = Directory.GetFiles(dir.Sub("a")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(files, Directory.GetFiles(dir.Sub("b")).Select(Path.GetFileName).Order());
        foreach (var f in files)
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir.Sub("a"), f!)), File.ReadAllBytes(Path.Combine(dir.Sub("b"), f!)));
        const string shard = "model-00001-of-00002.safetensors";
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(dir.Sub("a"), shard)), File.ReadAllBytes(Path.Combine(dir.Sub("c"), shard)));
    }

    [Fact]
    public void Rewriting_a_folder_with_fewer_shards_removes_the_old_ones()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions { Shards = 3 }, dir.Path);
        SyntheticCheckpoint.Write(new SyntheticOptions(), dir.Path);
        Assert.False(File.Exists(dir.Sub(HfCheckpoint.IndexFile)));
        Assert.Single(Directory.GetFiles(dir.Path, "model*.safetensors"));
        using var ckpt = HfCheckpoint.Open(dir.Path);
        Assert.Single(ckpt.Files);
    }

    [Fact]
    public void Weight_scales_follow_the_documented_initialisation()
    {
        using var dir = new ScratchDir();
        var o = SyntheticOptions.Preset("small");
        SyntheticCheckpoint.Write(o, dir.Path);
        using var ckpt = HfCheckpoint.Open(dir.Path);
        Assert.Equal(3.0 / Math.Sqrt(o.Hidden), Std(ckpt.ReadFloat32(LlamaTensors.Embed)), 2);
        Assert.Equal(1.0 / Math.Sqrt(o.Hidden), Std(ckpt.ReadFloat32(LlamaTensors.Attn(0, 'q'))), 2);
        Assert.Equal(1.0 / Math.Sqrt(o.Intermediate * 2.0 * o.Layers), Std(ckpt.ReadFloat32(LlamaTensors.Mlp(1, "down"))), 3);
        var norm = ckpt.ReadFloat32(LlamaTensors.InputNorm(2));
        Assert.All(norm, v => Assert.InRange(v, 0.9f, 1.1f));
        Assert.All(ckpt.ReadFloat32(LlamaTensors.FinalNorm), v => Assert.InRange(v, 0.9f, 1.1f));
    }

    [Fact]
    public void A_tied_model_has_a_final_norm_with_random_signs()
    {
        using var dir = new ScratchDir();
        SyntheticCheckpoint.Write(new SyntheticOptions { Tied = true }, dir.Path);
        using var ckpt = HfCheckpoint.Open(dir.Path);
        var norm = ckpt.ReadFloat32(LlamaTensors.FinalNorm);
        Assert.All(norm, v => Assert.InRange(MathF.Abs(v), 0.9f, 1.1f));
        Assert.InRange(norm.Count(v => v < 0), 16, 48);
    }

    [Fact]
    public void Progress_reaches_one()
    {
        using var dir = new ScratchDir();
        var reports = new List<double>();
        SyntheticCheckpoint.Write(new SyntheticOptions { Shards = 2 }, dir.Path, new SyncProgress<double>(reports.Add));
        Assert.Equal(0, reports[0]);
        Assert.Equal(1, reports[^1]);
        Assert.Equal(reports.Order(), reports);
    }

    [Fact]
    public void Presets_have_the_documented_shapes()
    {
        Assert.Equal(2, SyntheticOptions.Preset("tiny").Layers);
        Assert.Equal(256, SyntheticOptions.Preset("small").Hidden);
        long p = SyntheticCheckpoint.ParameterCount(SyntheticOptions.Preset("100m"));
        Assert.InRange(p, 95_000_000, 110_000_000);
        Assert.Throws<ArgumentException>(() => SyntheticOptions.Preset("huge"));
    }

    [Fact]
    public void Invalid_options_name_the_option()
    {
        using var dir = new ScratchDir();
        var e = Assert.Throws<ArgumentException>(() => SyntheticCheckpoint.Write(new SyntheticOptions { KvHeads = 3 }, dir.Path));
        Assert.Contains("KvHeads", e.Message);
        e = Assert.Throws<ArgumentException>(() => SyntheticCheckpoint.Write(new SyntheticOptions { Architecture = "GPT2LMHeadModel" }, dir.Path));
        Assert.Contains("Architecture", e.Message);
    }

    private static double Std(float[] v)
    {
        double mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length);
    }
}

/// <summary>An <see cref="IProgress{T}"/> that reports on the calling thread (Progress&lt;T&gt; posts asynchronously).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
