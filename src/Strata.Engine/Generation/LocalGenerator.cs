using System.Text;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models.Tokenization;

namespace Strata.Engine.Generation;

/// <summary>
/// Generates text with a <see cref="LocalPipeline"/>: prefill the prompt, then sample, stream-decode and check stop
/// conditions one token at a time. Sampling is kept apart from the forward pass; the seed is explicit.
/// </summary>
public static class LocalGenerator
{
    /// <summary>Streams the continuation of <paramref name="promptIds"/>.</summary>
    /// <exception cref="ContextOverflowException">The prompt alone does not fit the KV cache.</exception>
    public static IEnumerable<GenerationChunk> Stream(LocalPipeline pipeline, ITokenizer tokenizer, int[] promptIds,
        SamplingParams parameters, CancellationToken cancellation = default)
    {
        parameters.Validate();
        if (promptIds.Length == 0)
            throw new ArgumentException("the prompt encodes to no tokens (empty prompt and a model without BOS)", nameof(promptIds));
        if (promptIds.Length > pipeline.MaxContext)
            throw new ContextOverflowException(promptIds.Length, pipeline.MaxContext);

        using var seq = pipeline.NewSequence();
        var sampler = new Sampler(parameters);
        var stop = StopChecker.For(parameters);
        var decoder = tokenizer.CreateStreamingDecoder();

        float[] logits = seq.Forward(promptIds);
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            int id = sampler.Sample(logits);
            var decision = stop.Append(id, decoder.Push(id));
            bool full = !decision.IsStopped && seq.Length >= pipeline.MaxContext;
            if (decision.IsStopped || full)
            {
                // Whatever the decoder still holds (an incomplete character) ends the text unless a stop string cut it.
                string tail = decision.StopString is null ? decision.Text + (full ? stop.Flush() : "") + decoder.Flush() : decision.Text;
                yield return new GenerationChunk(id, tail, decision.FinishReason ?? FinishReasons.Length);
                yield break;
            }
            yield return new GenerationChunk(id, decision.Text, null);
            logits = seq.Forward([id]);
        }
    }

    /// <summary>Generates to the end and collects the result.</summary>
    public static GenerationResult Generate(LocalPipeline pipeline, ITokenizer tokenizer, int[] promptIds,
        SamplingParams parameters, Action<GenerationChunk>? onChunk = null, CancellationToken cancellation = default)
    {
        var ids = new List<int>();
        var text = new StringBuilder();
        string reason = FinishReasons.Length;
        foreach (var chunk in Stream(pipeline, tokenizer, promptIds, parameters, cancellation))
        {
            ids.Add(chunk.TokenId);
            text.Append(chunk.Text);
            onChunk?.Invoke(chunk);
            if (chunk.FinishReason is not null) reason = chunk.FinishReason;
        }
        return new GenerationResult(promptIds, ids.ToArray(), text.ToString(), reason);
    }
}
