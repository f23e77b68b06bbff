namespace Strata.Models.Planning;

/// <summary>
/// Cuts a layer range into contiguous groups, one per slot, in the slots' order.
/// Feasibility is decided exactly by a table over (slot, start layer) rather than greedily, so uneven layer sizes,
/// the embedding and head at the ends, and slots that must take several layers (several stages) never make it miss
/// a split that exists. When there is a choice it either fills each slot as far as it goes (<c>balance</c> null) or
/// minimises the largest load/weight ratio (the pipeline's bottleneck) and then keeps every group near its share.
/// </summary>
internal static class LayerSplitter
{
    /// <summary>Boundaries b[0..n] with b[0] = <paramref name="from"/>, b[n] = <paramref name="to"/>: slot g gets
    /// [b[g], b[g+1]). Null when no split fits.</summary>
    public static int[]? Split(LayerCosts costs, int from, int to, IReadOnlyList<Slot> slots, Balance? balance)
    {
        if (balance is null) return Split(costs, from, to, slots, null, double.PositiveInfinity);
        if (Split(costs, from, to, slots, balance, double.PositiveInfinity) is null) return null;

        // Smallest bottleneck (largest load/weight over the groups) that still fits, by bisection.
        double total = balance.Load(from, to);
        double lo = 0, hi = (total / balance.Weights.Min() + 1) * (1 + 1e-9);
        for (int i = 0; i < 100 && hi - lo > hi * 1e-6; i++)
        {
            double mid = (lo + hi) / 2;
            if (Split(costs, from, to, slots, balance, mid) is null) lo = mid; else hi = mid;
        }
        return Split(costs, from, to, slots, balance, hi);
    }

    /// <summary>The furthest end e (from <paramref name="start"/>, at most <paramref name="to"/>) with [start, e)
    /// within the slot's memory and within <paramref name="loadLimit"/>; <paramref name="start"/> when not even one layer fits.</summary>
    public static int MaxEnd(LayerCosts costs, Slot slot, int start, int to, Func<int, int, long>? load = null, double loadLimit = double.PositiveInfinity)
    {
        bool Fits(int e) => costs.Need(start, e) <= slot.Usable && (load is null || load(start, e) <= loadLimit);
        int lo = start, hi = to; // Fits is true up to some end, then false: find the last true
        while (lo < hi)
        {
            int mid = lo + (hi - lo + 1) / 2;
            if (Fits(mid)) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    private static int[]? Split(LayerCosts costs, int from, int to, IReadOnlyList<Slot> slots, Balance? balance, double limit)
    {
        int n = slots.Count;
        int End(int g, int start) => balance is null
            ? MaxEnd(costs, slots[g], start, to)
            : MaxEnd(costs, slots[g], start, to, balance.Load, limit * balance.Weights[g]);

        // ok[g][b]: slots g.. can cover [b, to). count[b + 1] - count[a] = true entries of ok[g + 1] in [a, b].
        // Slot g can only start where every earlier stage has a layer and every later one can still get one.
        var stagesBefore = new int[n + 1];
        for (int g = 0; g < n; g++) stagesBefore[g + 1] = stagesBefore[g] + slots[g].Stages;
        var ok = new bool[n + 1][];
        ok[n] = new bool[to + 1];
        ok[n][to] = true;
        for (int g = n - 1; g >= 0; g--)
        {
            var count = Counts(ok[g + 1]);
            ok[g] = new bool[to + 1];
            for (int b = from + stagesBefore[g], bLast = to - (stagesBefore[n] - stagesBefore[g]); b <= bLast; b++)
            {
                int first = b + slots[g].Stages, last = End(g, b);
                ok[g][b] = first <= last && count[last + 1] - count[first] > 0;
            }
        }
        if (!ok[0][from]) return null;

        var bounds = new int[n + 1];
        bounds[0] = from;
        for (int g = 0; g < n; g++)
        {
            int b = bounds[g], first = b + slots[g].Stages, last = End(g, b);
            bounds[g + 1] = balance is null ? LastTrue(ok[g + 1], first, last) : NearestShare(balance, ok[g + 1], g, b, to, first, last);
        }
        return bounds;
    }

    private static int[] Counts(bool[] ok)
    {
        var count = new int[ok.Length + 1];
        for (int i = 0; i < ok.Length; i++) count[i + 1] = count[i] + (ok[i] ? 1 : 0);
        return count;
    }

    private static int LastTrue(bool[] ok, int first, int last)
    {
        for (int e = last; e >= first; e--) if (ok[e]) return e;
        throw new InvalidOperationException("split table out of step");
    }

    // The feasible end whose load is nearest this slot's weighted share of what is left: bisection only bounds the
    // bottleneck, and without this the first slots would take all they may and leave the last ones short.
    private static int NearestShare(Balance balance, bool[] ok, int g, int start, int to, int first, int last)
    {
        double weightLeft = 0;
        for (int h = g; h < balance.Weights.Count; h++) weightLeft += balance.Weights[h];
        double target = balance.Load(start, to) * balance.Weights[g] / weightLeft;
        int best = -1;
        double bestGap = double.PositiveInfinity;
        for (int e = first; e <= last; e++)
        {
            if (!ok[e]) continue;
            double gap = Math.Abs(balance.Load(start, e) - target);
            if (gap < bestGap) (best, bestGap) = (e, gap);
        }
        return best >= 0 ? best : throw new InvalidOperationException("split table out of step");
    }
}
