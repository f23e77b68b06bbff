using Strata.Engine.Reference;
using Strata.Models;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Reference;

/// <summary>The reference forward pass on small random models covering what stories260K does not.</summary>
public sealed class ReferenceModelTests
{
    private static LlamaConfig Config(bool bias = true, bool tied = false, int kvHeads = 4, RopeScaling? scaling = null) => new()
    {
        Architecture = "LlamaForCausalLM",
        HiddenSize = 32,
        IntermediateSize = 48,
        NumLayers = 3,
        NumHeads = 4,
        NumKvHeads = kvHeads,
        HeadDim = 8,
        VocabSize = 40,
        MaxPositionEmbeddings = 64,
        RmsNormEps = 1e-6,
        RopeTheta = 10000,
        RopeScaling = scaling,
        AttentionBias = bias,
        TieWordEmbeddings = tied,
    };

    [Theory]
    [InlineData(true, false, 4)]   // MHA, biases, untied head
    [InlineData(false, true, 2)]   // GQA, tied head
    [InlineData(true, true, 1)]    // MQA
    public void Incremental_decoding_matches_one_forward(bool bias, bool tied, int kvHeads)
    {
        var config = Config(bias, tied, kvHeads, new RopeScaling(8, 1, 4, 16));
        using var source = MemoryTensorSource.Random(config, seed: 7);
        var model = ReferenceModel.Load(config, source);
        int[] tokens = [3, 17, 5, 39, 0, 22, 8, 8, 11];

        float[] all = model.CreateSession(tokens.Length).ForwardAll(tokens);
        var stepwise = model.CreateSession(tokens.Length);
        for (int t = 0; t < tokens.Length; t++)
        {
            float[] logits = stepwise.Forward(tokens.AsSpan(t, 1));
            Stories260KReferenceTests.AssertClose(all.AsSpan(t * config.VocabSize, config.VocabSize), logits, 1e-5f);
        }
    }

    [Fact]
    public void With_one_token_only_the_value_bias_matters()
    {
        // Attention over a single position is that position's value, whatever q and k are.
        var config = Config(bias: true);
        using var source = MemoryTensorSource.Random(config, seed: 3);
        float[] baseline = ReferenceModel.Load(config, source).CreateSession(4).Forward([5]);

        var qk = new float[config.NumHeads * config.HeadDim];
        Array.Fill(qk, 0.7f);
        source.Add(LlamaTensors.AttnBias(0, 'q'), [qk.Length], qk);
        source.Add(LlamaTensors.AttnBias(0, 'k'), [qk.Length], qk);
        float[] withQk = ReferenceModel.Load(config, source).CreateSession(4).Forward([5]);
        Stories260KReferenceTests.AssertClose(baseline, withQk, 1e-6f);

        source.Add(LlamaTensors.AttnBias(0, 'v'), [qk.Length], qk);
        float[] withV = ReferenceModel.Load(config, source).CreateSession(4).Forward([5]);
        Assert.Contains(baseline.Zip(withV), p => Math.Abs(p.First - p.Second) > 1e-3);
    }

    [Fact]
    public void Untied_head_uses_lm_head_weight()
    {
        var config = Config(tied: false);
        using var source = MemoryTensorSource.Random(config, seed: 5);
        var model = ReferenceModel.Load(config, source);
        float[] untied = model.CreateSession(4).Forward([2, 9]);

        var tiedConfig = config with { TieWordEmbeddings = true };
        float[] tied = ReferenceModel.Load(tiedConfig, source).CreateSession(4).Forward([2, 9]);
        Assert.Contains(untied.Zip(tied), p => Math.Abs(p.First - p.Second) > 1e-3);
    }

    [Fact]
    public void Missing_or_misshapen_tensor_is_named()
    {
        var config = Config();
        using var source = MemoryTensorSource.Random(config, seed: 1);
        source.Add(LlamaTensors.Mlp(1, "up"), [3], new float[3]);
        var e = Assert.Throws<ModelFormatException>(() => ReferenceModel.Load(config, source));
        Assert.Contains("model.layers.1.mlp.up_proj.weight", e.Message, StringComparison.Ordinal);

        using var empty = new MemoryTensorSource();
        e = Assert.Throws<ModelFormatException>(() => ReferenceModel.Load(config, empty));
        Assert.Contains(LlamaTensors.Embed, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_input_is_rejected_with_a_clear_error()
    {
        var config = Config();
        using var source = MemoryTensorSource.Random(config, seed: 1);
        var model = ReferenceModel.Load(config, source);

        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateSession(4).Forward([40]));
        var full = model.CreateSession(2);
        full.Forward([1, 2]);
        Assert.Throws<InvalidOperationException>(() => full.Forward([3]));
        Assert.Throws<InvalidOperationException>(() => model.CreateSession(4, 1, 3).Forward([1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateSession(4, 2, 2));
        Assert.Throws<ArgumentException>(() => model.CreateSession(4).RunLayers(new float[31]));
    }
}
