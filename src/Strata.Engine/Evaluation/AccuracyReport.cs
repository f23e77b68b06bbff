using System.Globalization;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;

namespace Strata.Engine.Evaluation;

/// <summary>
/// How closely a candidate model (a quantized package) follows a reference (the same model unquantized), greedy on a
/// prompt and teacher-forced on a fixed text.
/// </summary>
/// <param name="Steps">Greedy steps compared, over all prompts.</param>
/// <param name="GreedyPrefixes">Per prompt, the tokens the two free-running greedy continuations share before they first differ.</param>
/// <param name="GreedyAgreement">Steps, teacher-forced along the reference's greedy continuation, at which the
/// candidate's argmax equals the reference's.</param>
/// <param name="MeanLogitError">Mean |candidate - reference| over every logit of every compared position.</param>
/// <param name="MaxLogitError">Largest |candidate - reference| of any logit.</param>
/// <param name="MeanKl">Mean KL(reference ‖ candidate) of the next-token distributions, in nats, over the greedy steps
/// and the text's positions.</param>
/// <param name="ReferencePerplexity">The reference's perplexity on the text.</param>
/// <param name="CandidatePerplexity">The candidate's perplexity on the text.</param>
/// <param name="TextTokens">Tokens of the text whose next token was scored.</param>
public sealed record AccuracyReport(int Steps, IReadOnlyList<int> GreedyPrefixes, int GreedyAgreement, double MeanLogitError, double MaxLogitError,
    double MeanKl, double ReferencePerplexity, double CandidatePerplexity, int TextTokens)
{
    /// <summary>Candidate perplexity over reference perplexity.</summary>
    public double PerplexityRatio => CandidatePerplexity / ReferencePerplexity;

    /// <summary>The report as a few aligned lines.</summary>
    public string ToText() => string.Create(CultureInfo.InvariantCulture, $"""
        greedy agreement:  {GreedyAgreement}/{Steps} steps (teacher-forced); free-running, identical for the first {string.Join(", ", GreedyPrefixes)} of {Steps / GreedyPrefixes.Count} tokens
        logit error:       mean {MeanLogitError:G3}, max {MaxLogitError:G3}
        KL divergence:     {MeanKl:G3} nats per token (reference ‖ quantized)
        perplexity:        {CandidatePerplexity:F3} quantized vs {ReferencePerplexity:F3} reference (x{PerplexityRatio:F4}) on {TextTokens} tokens
        """);

    /// <summary>
    /// Compares <paramref name="candidate"/> with <paramref name="reference"/>: <paramref name="steps"/> greedy steps
    /// after each of <paramref name="prompts"/>, and next-token scores along <paramref name="text"/> (token ids, the
    /// first usually BOS). Both pipelines need a context of prompt + steps and of the text.
    /// </summary>
    public static AccuracyReport Measure(LocalPipeline reference, LocalPipeline candidate, IReadOnlyList<int[]> prompts, int steps, int[] text)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(prompts.Count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(text.Length, 2);
        var errors = new ErrorSums();
        int agreement = 0;
        var prefixes = new List<int>();
        foreach (var prompt in prompts)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(prompt.Length, 1);
            var refGreedy = TeacherForced(reference, candidate, prompt, steps, errors, ref agreement);
            prefixes.Add(SharedPrefix(candidate, prompt, refGreedy));
        }

        double refNll = 0, candNll = 0;
        using (var r = reference.NewSequence())
        using (var c = candidate.NewSequence())
        {
            for (int i = 0; i + 1 < text.Length; i++)
            {
                var rl = r.Forward([text[i]]);
                var cl = c.Forward([text[i]]);
                errors.Add(rl, cl);
                refNll -= LogSoftmax(rl, text[i + 1]);
                candNll -= LogSoftmax(cl, text[i + 1]);
            }
        }
        int scored = text.Length - 1;
        return new AccuracyReport(steps * prompts.Count, prefixes, agreement, errors.Sum / errors.Count, errors.Max, errors.Kl / errors.Positions,
            Math.Exp(refNll / scored), Math.Exp(candNll / scored), scored);
    }

    /// <summary>Both models fed the reference's greedy continuation, so errors do not compound; returns that continuation.</summary>
    private static List<int> TeacherForced(LocalPipeline reference, LocalPipeline candidate, int[] prompt, int steps, ErrorSums errors, ref int agreement)
    {
        var refGreedy = new List<int>();
        using var r = reference.NewSequence();
        using var c = candidate.NewSequence();
        var rl = r.Forward(prompt);
        var cl = c.Forward(prompt);
        for (int i = 0; i < steps; i++)
        {
            int next = Sampler.ArgMax(rl);
            if (Sampler.ArgMax(cl) == next) agreement++;
            errors.Add(rl, cl);
            refGreedy.Add(next);
            rl = r.Forward([next]);
            cl = c.Forward([next]);
        }
        return refGreedy;
    }

    /// <summary>How many tokens the candidate's own greedy continuation shares with <paramref name="refGreedy"/>.</summary>
    private static int SharedPrefix(LocalPipeline candidate, int[] prompt, List<int> refGreedy)
    {
        int prefix = 0;
        using var c = candidate.NewSequence();
        var cl = c.Forward(prompt);
        while (prefix < refGreedy.Count && Sampler.ArgMax(cl) == refGreedy[prefix])
        {
            cl = c.Forward([refGreedy[prefix]]);
            prefix++;
        }
        return prefix;
    }

    private static double LogSoftmax(ReadOnlySpan<float> logits, int index) => logits[index] - LogSumExp(logits);

    private static double LogSumExp(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        return max + Math.Log(sum);
    }

    private sealed class ErrorSums
    {
        public double Sum, Max, Kl;
        public long Count;
        public int Positions;

        public void Add(float[] reference, float[] candidate)
        {
            for (int i = 0; i < reference.Length; i++)
            {
                double e = Math.Abs(reference[i] - candidate[i]);
                Sum += e;
                Max = Math.Max(Max, e);
            }
            Count += reference.Length;
            Kl += Divergence(reference, candidate);
            Positions++;
        }

        /// <summary>KL(p ‖ q) of the softmaxes of two logit vectors.</summary>
        private static double Divergence(float[] p, float[] q)
        {
            double lzp = LogSumExp(p), lzq = LogSumExp(q), kl = 0;
            for (int i = 0; i < p.Length; i++)
            {
                double lp = p[i] - lzp, lq = q[i] - lzq;
                kl += Math.Exp(lp) * (lp - lq);
            }
            return kl;
        }
    }
}
