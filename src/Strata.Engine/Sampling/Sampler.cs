using System.Security.Cryptography;

namespace Strata.Engine.Sampling;

/// <summary>
/// Picks the next token from a row of logits, as <see cref="SamplingParams"/> says: greedy at temperature 0,
/// otherwise a temperature-scaled softmax cut by top-k and then top-p, and one draw from its own
/// <see cref="Xoshiro256StarStar"/> generator. One sampler per sequence; not thread-safe.
/// Buffers are sized to the vocabulary on first use and reused, so a call allocates nothing.
/// </summary>
/// <remarks>
/// The draw takes one uniform u in [0, total) and returns the first candidate whose running sum of
/// (unnormalised) probabilities exceeds u. Candidates are walked by id when no cut applies and by
/// probability descending, ties by lower id, after a cut. Greedy picks consume no random numbers;
/// every other pick consumes exactly one 64-bit output, so a restored state replays the same tokens.
/// </remarks>
public sealed class Sampler
{
    private readonly Xoshiro256StarStar _rng;
    private float[] _probs = [];  // [vocab] exp((logit - max) / T), unnormalised
    private int[] _ids = [];      // [vocab] candidate ids, reordered in place by the cuts

    /// <summary>Creates a sampler; validates <paramref name="parameters"/> and seeds the generator
    /// from <see cref="SamplingParams.Seed"/>, or from the OS when it is null.</summary>
    public Sampler(SamplingParams parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        parameters.Validate();
        Params = parameters;
        Seed = parameters.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        _rng = new Xoshiro256StarStar(Seed);
    }

    /// <summary>The parameters this sampler follows.</summary>
    public SamplingParams Params { get; }

    /// <summary>The seed actually used (the one chosen at random when the parameters had none).</summary>
    public ulong Seed { get; }

    /// <summary>The generator state, to persist with a session (see <see cref="SetState"/>).</summary>
    public ulong[] GetState() => _rng.GetState();

    /// <summary>Restores a generator state taken with <see cref="GetState"/>.</summary>
    public void SetState(ReadOnlySpan<ulong> state) => _rng.SetState(state);

    /// <summary>Picks a token id from <paramref name="logits"/> ([vocab]). NaN logits are never picked.</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("logits are empty", nameof(logits));
        if (Params.IsGreedy) return ArgMax(logits);

        float max = float.NegativeInfinity;
        foreach (float l in logits)
            if (l > max) max = l;
        if (float.IsNegativeInfinity(max))
            throw new ArgumentException("logits hold no value above -infinity", nameof(logits));

        int n = logits.Length;
        EnsureCapacity(n);
        float invT = (float)(1.0 / Params.Temperature); // may be +inf for a tiny temperature
        for (int i = 0; i < n; i++)
        {
            float l = logits[i];
            // l == max first: with invT = inf, (max - max) * inf would be NaN.
            _probs[i] = l == max ? 1f : float.IsNaN(l) ? 0f : MathF.Exp((l - max) * invT);
            _ids[i] = i;
        }

        Span<int> candidates = _ids.AsSpan(0, n);
        var order = new ByProbabilityDescending(_probs);
        if (Params.TopK > 0 && Params.TopK < n)
        {
            SelectTop(candidates, Params.TopK, order);
            candidates = candidates[..Params.TopK];
            candidates.Sort(order);
        }
        if (Params.TopP < 1)
            candidates = Nucleus(candidates, Params.TopP, order);
        return Draw(candidates);
    }

    /// <summary>The index of the largest logit; the lowest index on ties. NaN is never the largest.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) throw new ArgumentException("logits are empty", nameof(logits));
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best] || float.IsNaN(logits[best])) best = i;
        return best;
    }

    /// <summary>
    /// Cuts <paramref name="candidates"/> to the nucleus: the smallest prefix, in probability order, whose
    /// mass reaches <paramref name="topP"/> of the candidates' total. Before sorting it drops tokens that
    /// cannot be in it: if the last nucleus token has probability q, the m &lt;= n tokens from it on hold
    /// more than (1 - p) of the mass, so q &gt; (1 - p) * total / n. Halving that bound keeps rounding safe;
    /// keeping extra tokens only costs sort time. This makes top-p on a 128k vocabulary cheap.
    /// </summary>
    private Span<int> Nucleus(Span<int> candidates, double topP, ByProbabilityDescending order)
    {
        double total = 0;
        foreach (int id in candidates) total += _probs[id];
        double floor = 0.5 * (1 - topP) * total / candidates.Length;
        int kept = 0;
        foreach (int id in candidates)
            if (_probs[id] > floor) candidates[kept++] = id;
        candidates = candidates[..kept];
        candidates.Sort(order);

        double target = topP * total, cumulative = 0;
        for (int i = 0; i < candidates.Length; i++)
        {
            cumulative += _probs[candidates[i]];
            if (cumulative >= target) return candidates[..(i + 1)];
        }
        return candidates;
    }

    private int Draw(ReadOnlySpan<int> candidates)
    {
        double total = 0;
        foreach (int id in candidates) total += _probs[id];
        double u = _rng.NextDouble() * total;
        double cumulative = 0;
        int lastPositive = candidates[0];
        foreach (int id in candidates)
        {
            if (_probs[id] <= 0) continue;
            cumulative += _probs[id];
            lastPositive = id;
            if (u < cumulative) return id;
        }
        return lastPositive; // u rounded up to total
    }

    /// <summary>Quickselect: reorders <paramref name="a"/> so its first <paramref name="k"/> entries are the k best.</summary>
    private static void SelectTop(Span<int> a, int k, ByProbabilityDescending order)
    {
        int lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            int mid = lo + (hi - lo) / 2;
            // Median of three as the pivot, moved to hi.
            if (order.Compare(a[mid], a[lo]) < 0) (a[mid], a[lo]) = (a[lo], a[mid]);
            if (order.Compare(a[hi], a[lo]) < 0) (a[hi], a[lo]) = (a[lo], a[hi]);
            if (order.Compare(a[mid], a[hi]) < 0) (a[mid], a[hi]) = (a[hi], a[mid]);
            int pivot = a[hi], store = lo;
            for (int i = lo; i < hi; i++)
            {
                if (order.Compare(a[i], pivot) >= 0) continue;
                (a[i], a[store]) = (a[store], a[i]);
                store++;
            }
            (a[store], a[hi]) = (a[hi], a[store]);

            if (store == k - 1) return;
            if (store < k - 1) lo = store + 1;
            else hi = store - 1;
        }
    }

    private void EnsureCapacity(int vocab)
    {
        if (_probs.Length == vocab) return;
        _probs = new float[vocab];
        _ids = new int[vocab];
    }

    /// <summary>Orders ids by probability, highest first, then by id: a strict total order.</summary>
    private readonly struct ByProbabilityDescending(float[] probs) : IComparer<int>
    {
        public int Compare(int x, int y)
        {
            int c = probs[y].CompareTo(probs[x]);
            return c != 0 ? c : x.CompareTo(y);
        }
    }
}
