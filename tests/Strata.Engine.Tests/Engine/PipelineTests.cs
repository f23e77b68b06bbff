using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Tests.Reference;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Engine;

public sealed class PipelineTests
{
    private static readonly LlamaConfig Config = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 32, IntermediateSize = 48, NumLayers = 2, NumHeads = 2,
        NumKvHeads = 1, HeadDim = 16, VocabSize = 64, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000,
        AttentionBias = false, TieWordEmbeddings = true,
    };

    [Fact]
    public void Chunked_prefill_gives_the_same_logits_as_one_prefill()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 7);
        int[] prompt = Enumerable.Range(3, 11).ToArray();
        using var whole = LocalPipeline.Load(Config, w, 2, new EngineOptions { MaxContext = 32, IntraOpThreads = 1 });
        using var chunked = LocalPipeline.Load(Config, w, 2, new EngineOptions { MaxContext = 32, IntraOpThreads = 1, PrefillChunk = 4 });
        using var a = whole.NewSequence();
        using var b = chunked.NewSequence();
        float diff = EngineAgreement.MaxAbsDiff(a.Forward(prompt), b.Forward(prompt));
        Assert.True(diff < 1e-5f, $"chunked prefill differs by {diff}");
        Assert.Equal(prompt.Length, b.Length);
    }

    [Fact]
    public void Growing_past_max_context_is_a_clear_error_and_the_sequence_keeps_its_state()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 7);
        using var pipeline = LocalPipeline.Load(Config, w, 1, new EngineOptions { MaxContext = 8, IntraOpThreads = 1 });
        using var seq = pipeline.NewSequence();
        seq.Forward([1, 2, 3, 4, 5, 6]);
        var e = Assert.Throws<ContextOverflowException>(() => seq.Forward([7, 8, 9]));
        Assert.Contains("9 positions", e.Message);
        Assert.Contains("max-context", e.Message);
        Assert.Equal(6, seq.Length);
        seq.Forward([7, 8]); // still usable up to the limit
        Assert.Equal(8, seq.Length);
    }

    [Fact]
    public void Bad_token_ids_and_bad_activations_are_rejected_with_the_reason()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 7);
        using var pipeline = LocalPipeline.Load(Config, w, 2, new EngineOptions { MaxContext = 8, IntraOpThreads = 1 });
        using var seq = pipeline.NewSequence();
        var e = Assert.Throws<ArgumentException>(() => seq.Forward([1, 64]));
        Assert.Contains("outside the vocabulary", e.Message);

        var second = pipeline.Stages[1];
        using var pool = second.CreateKvPool(1);
        var wrong = new Activations(ComputeType.Float32, 1, 1, Config.HiddenSize, new byte[10]);
        var e2 = Assert.Throws<ArgumentException>(() => second.Run(pool, 0, [0], 1, default, wrong, new float[Config.VocabSize]));
        Assert.Contains("bytes", e2.Message);
    }

    [Fact]
    public void Even_split_covers_all_layers()
    {
        var specs = StageSpec.Even(5, 3);
        Assert.Equal([(0, 2), (2, 4), (4, 5)], specs.Select(s => (s.FirstLayer, s.EndLayer)));
        Assert.Throws<ArgumentOutOfRangeException>(() => StageSpec.Even(2, 3));
    }
}
