using Microsoft.ML.Tokenizers;
using Strata.Engine.Runtime;
using Strata.Engine.Tests.Reference;
using Strata.Models.Checkpoints;

namespace Strata.Engine.Tests.Engine;

/// <summary>The ONNX pipeline on the real stories260K checkpoint (models/stories260K, in the repository).</summary>
public sealed class Stories260KEngineTests
{
    private const string PublishedContinuation = ", there was a little girl named Lily. She loved to play outside in the park.";

    [Fact]
    public void Engine_matches_reference_for_1_2_and_per_layer_stages()
    {
        string dir = TestModels.Stories260K;
        using var checkpoint = HfCheckpoint.Open(dir);
        int[] prompt = [1, 403, 407, 261, 378, 430, 44, 400];
        EngineAgreement.AssertAgrees(checkpoint.Config, checkpoint.Tensors, prompt, newTokens: 16, 1, 2, checkpoint.Config.NumLayers);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void Greedy_continuation_is_the_published_sample(int stages)
    {
        string dir = TestModels.Stories260K;
        using var checkpoint = HfCheckpoint.Open(dir);
        using var tokenizerFile = File.OpenRead(Path.Combine(dir, "tokenizer.model"));
        var tokenizer = LlamaTokenizer.Create(tokenizerFile);
        int[] prompt = tokenizer.EncodeToIds("Once upon a time").ToArray();

        using var pipeline = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, stages, new EngineOptions { IntraOpThreads = 1, MaxContext = 128 });
        var (_, tokens) = EngineAgreement.PipelineGreedy(pipeline, prompt, 48);
        var generated = tokens.TakeWhile(t => t is not (1 or 2)).ToArray();
        string text = tokenizer.Decode(prompt.Concat(generated)) ?? "";
        Assert.StartsWith("Once upon a time" + PublishedContinuation, text, StringComparison.Ordinal);
    }
}
