using Microsoft.ML.Tokenizers;
using Strata.Engine.Reference;
using Strata.Engine.Sampling;
using Strata.Models.Checkpoints;

namespace Strata.Engine.Tests.Reference;

/// <summary>The reference forward pass on the real stories260K checkpoint (models/stories260K, in the repository).</summary>
public sealed class Stories260KReferenceTests
{
    // llama2.c doc/stories260K.md, run.c at temperature 0 from "Once upon a time".
    private const string PublishedSample =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

    private static ReferenceModel Load()
    {
        string dir = TestModels.Stories260K;
        using var checkpoint = HfCheckpoint.Open(dir);
        return ReferenceModel.Load(checkpoint.Config, checkpoint.Tensors);
    }

    [Fact]
    public void Greedy_decoding_reproduces_the_published_sample()
    {
        string dir = TestModels.Stories260K;
        var model = Load();
        using var tokenizerFile = File.OpenRead(Path.Combine(dir, "tokenizer.model"));
        var tokenizer = LlamaTokenizer.Create(tokenizerFile);
        var ids = tokenizer.EncodeToIds("Once upon a time").ToList();
        Assert.Equal(1, ids[0]); // <s>

        var session = model.CreateSession(maxSeqLen: 64);
        float[] logits = session.Forward(ids.ToArray());
        for (int step = 0; step < 40; step++)
        {
            int next = Sampler.ArgMax(logits);
            if (next is 1 or 2) break; // generation_config.json stop ids
            ids.Add(next);
            logits = session.Forward([next]);
        }

        string text = tokenizer.Decode(ids) ?? "";
        Assert.True(text.StartsWith(PublishedSample, StringComparison.Ordinal), $"greedy output was: {text}");
    }

    [Fact]
    public void Incremental_decoding_matches_one_forward_over_the_sequence()
    {
        var model = Load();
        int[] tokens = [1, 403, 407, 261, 378, 430, 44, 400, 285, 268, 315, 335];
        int vocab = model.Config.VocabSize;

        float[] all = model.CreateSession(32).ForwardAll(tokens); // [seq, vocab]
        var stepwise = model.CreateSession(32);
        for (int t = 0; t < tokens.Length; t++)
        {
            float[] logits = stepwise.Forward(tokens.AsSpan(t, 1));
            AssertClose(all.AsSpan(t * vocab, vocab), logits, 1e-5f);
        }
        Assert.Equal(tokens.Length, stepwise.Position);

        // A prefill of several tokens then single steps agrees too.
        var mixed = model.CreateSession(32);
        mixed.Forward(tokens.AsSpan(0, 7));
        float[] last = [];
        for (int t = 7; t < tokens.Length; t++) last = mixed.Forward(tokens.AsSpan(t, 1));
        AssertClose(all.AsSpan((tokens.Length - 1) * vocab, vocab), last, 1e-5f);
    }

    [Fact]
    public void Running_layers_in_two_stages_equals_running_them_at_once()
    {
        var model = Load();
        int[] prompt = [1, 403, 407, 261, 378], next = [430, 44];
        var whole = model.CreateSession(16);
        var first = model.CreateSession(16, 0, 2);
        var second = model.CreateSession(16, 2, 5);

        foreach (int[] tokens in new[] { prompt, next })
        {
            float[] x = model.Embed(tokens);                             // [seq, hidden]
            float[] expected = whole.RunLayers(x);
            float[] staged = second.RunLayers(first.RunLayers(x));
            AssertClose(expected, staged, 0f);
        }
        Assert.Equal(prompt.Length + next.Length, second.Position);

        // Embed, layers and head compose to Forward.
        var full = model.CreateSession(16);
        float[] logits = full.ForwardAll(prompt);
        float[] composed = model.Head(model.CreateSession(16).RunLayers(model.Embed(prompt)));
        AssertClose(logits, composed, 0f);
    }

    [Fact]
    public void Truncate_rolls_the_sequence_back()
    {
        var model = Load();
        var session = model.CreateSession(16);
        float[] expected = session.Forward([1, 403, 407]);
        session.Forward([261, 378]);
        session.Truncate(2);
        Assert.Equal(2, session.Position);
        AssertClose(expected, session.Forward([407]), 0f);
    }

    internal static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (Math.Abs(expected[i] - actual[i]) > tolerance)
                Assert.Fail($"element {i}: expected {expected[i]}, got {actual[i]} (tolerance {tolerance})");
        }
    }
}
