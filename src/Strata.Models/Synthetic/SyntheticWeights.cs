using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Models.Synthetic;

/// <summary>
/// The values of a synthetic checkpoint. Scales follow the usual initialisation so a random model stays
/// numerically sane through many layers and its greedy output is not one repeated token:
/// linear weights ~ N(0, 1/fan_in); the output projections of each block (o_proj, down_proj) further scaled by
/// 1/sqrt(2 * layers) so the residual stream grows to about unit size over the whole stack; RMSNorm weights
/// 1 + 0.1u; embedding and LM head ~ N(0, (EmbeddingGain^2)/hidden) so logits over the vocabulary have a standard
/// deviation near <see cref="EmbeddingGain"/> (a tied head is distinctive, yet no single token dominates).
/// With a tied head the final norm's weights also get random signs: the residual stream still holds the input
/// token's embedding, and with all-positive weights its own logit stands out (|e|^2 against a spread of |e|), so a
/// random tied model would predict its input token forever. Random signs cancel that term on average; measured with
/// a small forward pass, greedy output then varies as much as an untied model's.
/// </summary>
internal static class SyntheticWeights
{
    /// <summary>Standard deviation of the logits of a unit-RMS final hidden state.</summary>
    public const float EmbeddingGain = 3f;

    /// <summary>A filler producing tensor <paramref name="t"/>'s values from its own random stream.</summary>
    public static TensorFloatFiller Filler(ExpectedTensor t, LlamaConfig c, ulong seed)
    {
        var (kind, scale) = Describe(t, c);
        var stream = new Stream(SplitMix64.ForStream(seed, t.Name), kind, scale);
        return stream.Fill;
    }

    private enum Kind { Normal, AroundOne, SignedAroundOne, Small }

    private static (Kind Kind, float Scale) Describe(ExpectedTensor t, LlamaConfig c)
    {
        string n = t.Name;
        float residual = 1f / MathF.Sqrt(2f * c.NumLayers);
        if (n == LlamaTensors.Embed || n == LlamaTensors.LmHead)
            return (Kind.Normal, EmbeddingGain / MathF.Sqrt(c.HiddenSize));
        if (n == LlamaTensors.FinalNorm && c.TieWordEmbeddings) return (Kind.SignedAroundOne, 0.1f);
        if (n.EndsWith("norm.weight", StringComparison.Ordinal)) return (Kind.AroundOne, 0.1f);
        if (n.EndsWith(".bias", StringComparison.Ordinal)) return (Kind.Small, 0.1f);
        float fanIn = t.Shape[^1];
        float s = 1f / MathF.Sqrt(fanIn);
        if (n.EndsWith("o_proj.weight", StringComparison.Ordinal) || n.EndsWith("down_proj.weight", StringComparison.Ordinal))
            s *= residual;
        return (Kind.Normal, s);
    }

    /// <summary>One tensor's generator; chunks arrive in order, so values never depend on the chunk size.</summary>
    private sealed class Stream(SplitMix64 rng, Kind kind, float scale)
    {
        private SplitMix64 _rng = rng;
        private long _next;

        public void Fill(long elementOffset, Span<float> destination)
        {
            if (elementOffset != _next)
                throw new InvalidOperationException($"synthetic tensor chunks must arrive in order (expected {_next}, got {elementOffset})");
            _next += destination.Length;
            switch (kind)
            {
                case Kind.AroundOne:
                    for (int i = 0; i < destination.Length; i++) destination[i] = 1f + scale * _rng.NextSymmetric();
                    break;
                case Kind.SignedAroundOne:
                    for (int i = 0; i < destination.Length; i++)
                    {
                        // One draw: its sign is the weight's sign, its magnitude maps to 1 +- scale.
                        float u = _rng.NextSymmetric();
                        destination[i] = MathF.CopySign(1f + scale * (2 * MathF.Abs(u) - 1), u);
                    }
                    break;
                case Kind.Small:
                    for (int i = 0; i < destination.Length; i++) destination[i] = scale * _rng.NextSymmetric();
                    break;
                default:
                    for (int i = 0; i < destination.Length; i++) destination[i] = scale * _rng.NextNormalish();
                    break;
            }
        }
    }
}
