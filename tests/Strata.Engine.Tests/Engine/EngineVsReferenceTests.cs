using Strata.Engine.Tests.Reference;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Engine;

public sealed class EngineVsReferenceTests
{
    private static LlamaConfig Shape(int layers = 3, int heads = 4, int kvHeads = 2, bool tied = false, bool bias = false,
        RopeScaling? scaling = null, int? headDim = null) => new()
    {
        Architecture = bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM",
        HiddenSize = 32,
        IntermediateSize = 48,
        NumLayers = layers,
        NumHeads = heads,
        NumKvHeads = kvHeads,
        HeadDim = headDim ?? 32 / heads,
        VocabSize = 96,
        MaxPositionEmbeddings = 128,
        RmsNormEps = 1e-5,
        RopeTheta = 10000,
        RopeScaling = scaling,
        AttentionBias = bias,
        TieWordEmbeddings = tied,
    };

    private static readonly int[] Prompt = [1, 17, 42, 5, 88, 23, 9];

    [Fact]
    public void GroupedQueryAttention_untied_matches_reference_for_1_2_and_per_layer_stages()
    {
        var c = Shape();
        using var w = MemoryTensorSource.Random(c, seed: 1);
        EngineAgreement.AssertAgrees(c, w, Prompt, newTokens: 8, 1, 2, c.NumLayers);
    }

    [Fact]
    public void MultiHeadAttention_tied_matches_reference()
    {
        var c = Shape(heads: 4, kvHeads: 4, tied: true);
        using var w = MemoryTensorSource.Random(c, seed: 2);
        EngineAgreement.AssertAgrees(c, w, Prompt, newTokens: 8, 1, 2, c.NumLayers);
    }

    [Fact]
    public void Qkv_bias_llama3_rope_scaling_and_explicit_head_dim_match_reference()
    {
        var c = Shape(heads: 4, kvHeads: 1, bias: true, scaling: new RopeScaling(8, 1, 4, 16), headDim: 16);
        using var w = MemoryTensorSource.Random(c, seed: 3);
        EngineAgreement.AssertAgrees(c, w, Prompt, newTokens: 8, 1, c.NumLayers);
    }
}
