using Strata.Engine.Reference;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Engine;

/// <summary>Runs the ONNX pipeline and the reference forward pass side by side.</summary>
internal static class EngineAgreement
{
    public const float LogitTolerance = 1e-4f;

    /// <summary>Asserts first-step logits within tolerance and identical greedy tokens for each stage count.</summary>
    public static void AssertAgrees(LlamaConfig config, ITensorSource tensors, int[] prompt, int newTokens, params int[] stageCounts)
    {
        var reference = ReferenceModel.Load(config, tensors);
        var (refLogits, refTokens) = ReferenceGreedy(reference, prompt, newTokens);
        foreach (int k in stageCounts)
        {
            using var pipeline = LocalPipeline.Load(config, tensors, k, new EngineOptions { MaxContext = 64, IntraOpThreads = 1 });
            var (logits, tokens) = PipelineGreedy(pipeline, prompt, newTokens);
            float maxDiff = MaxAbsDiff(refLogits, logits);
            Assert.True(maxDiff <= LogitTolerance, $"K={k}: first-step logits differ by {maxDiff} (tolerance {LogitTolerance})");
            Assert.Equal(refTokens, tokens);
        }
    }

    public static (float[] FirstLogits, int[] Tokens) ReferenceGreedy(ReferenceModel model, int[] prompt, int newTokens)
    {
        var session = model.CreateSession(64);
        var logits = session.Forward(prompt);
        var first = logits;
        var tokens = new List<int>();
        for (int i = 0; i < newTokens; i++)
        {
            int next = Sampler.ArgMax(logits);
            tokens.Add(next);
            logits = session.Forward([next]);
        }
        return (first, tokens.ToArray());
    }

    public static (float[] FirstLogits, int[] Tokens) PipelineGreedy(LocalPipeline pipeline, int[] prompt, int newTokens)
    {
        using var seq = pipeline.NewSequence();
        var logits = seq.Forward(prompt);
        var first = logits;
        var tokens = new List<int>();
        for (int i = 0; i < newTokens; i++)
        {
            int next = Sampler.ArgMax(logits);
            tokens.Add(next);
            logits = seq.Forward([next]);
        }
        return (first, tokens.ToArray());
    }

    public static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }
}
