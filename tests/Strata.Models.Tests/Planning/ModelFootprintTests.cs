using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Planning;

namespace Strata.Models.Tests.Planning;

public class ModelFootprintTests
{
    private static PackageManifest Manifest(int layers) => new()
    {
        Name = "tiny",
        Config = new LlamaConfig
        {
            Architecture = "LlamaForCausalLM", HiddenSize = 64, IntermediateSize = 128, NumLayers = layers,
            NumHeads = 8, NumKvHeads = 2, HeadDim = 8, VocabSize = 100, MaxPositionEmbeddings = 256,
            RmsNormEps = 1e-5, RopeTheta = 10000, AttentionBias = false, TieWordEmbeddings = false,
        },
        DType = TensorDType.F16,
        Source = new PackageSource("huggingface", "tiny", "fp16", ["model.safetensors"]),
        Embedding = new PackageFile(PackageManifest.EmbeddingFile, 12_800, "00"),
        Layers = Enumerable.Range(0, layers).Select(i => new PackageLayer(i, new PackageFile(PackageManifest.LayerFile(i), 50_000 + i, "00"))).ToArray(),
        Head = new PackageFile(PackageManifest.HeadFile, 12_928, "00"),
        Files = [],
    };

    [Fact]
    public void From_manifest_takes_the_file_sizes_and_kv_shape()
    {
        var f = ModelFootprint.From(Manifest(3), kvElementBytes: 2);
        Assert.Equal(12_800, f.EmbeddingBytes);
        Assert.Equal([50_000L, 50_001L, 50_002L], f.LayerBytes);
        Assert.Equal(12_928, f.HeadBytes);
        Assert.Equal(2L * 2 * 8 * 2, f.KvBytesPerTokenPerLayer); // keys and values x KV heads x head width x fp16
        Assert.Equal(3 * f.KvBytesPerTokenPerLayer, f.KvBytesPerToken);
        Assert.Equal(12_800 + 150_003 + 12_928, f.WeightBytes);

        Assert.Equal(2L * 2 * 16 * 4, ModelFootprint.From(Manifest(3), kvElementBytes: 4, kvHeadDim: 16).KvBytesPerTokenPerLayer);
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelFootprint.From(Manifest(3), kvElementBytes: 0));
    }

    [Fact]
    public void Seventy_b_shape_reserves_320_KiB_per_token()
    {
        var m = Manifest(80) with { Config = Manifest(80).Config with { NumKvHeads = 8, HeadDim = 128 } };
        var f = ModelFootprint.From(m, kvElementBytes: 2);
        Assert.Equal(4096, f.KvBytesPerTokenPerLayer);
        Assert.Equal(320 * 1024, f.KvBytesPerToken);
    }

    [Fact]
    public void A_tied_head_counts_the_embedding_copy_the_last_stage_holds()
    {
        var untied = Manifest(3);
        var tied = untied with { Config = untied.Config with { TieWordEmbeddings = true } };
        Assert.Equal(ModelFootprint.From(untied, 2).HeadBytes + untied.Embedding.Bytes, ModelFootprint.From(tied, 2).HeadBytes);
    }
}
