namespace Strata.Models.Planning;

/// <summary>
/// Plans over silos that all advertise a calibration: the set of silos, their order along the chain and the layer
/// split that minimise the predicted step of the slowest stage plus the hops, within each silo's memory; among plans
/// that reach that, the one whose stages add up to the least (a lone session's time per token). Exact: dynamic
/// programming over subsets of silos and layer positions, O(2^n x n x layers^2) at worst, so up to
/// <see cref="MaxExhaustive"/> silos; above that the fastest of them are searched.
/// </summary>
internal static class MeasuredPlanner
{
    /// <summary>The most silos the search takes; with more, the fastest this many (for the whole model) are searched.</summary>
    public const int MaxExhaustive = 10;

    private const double Tie = 1e-12;

    /// <summary>The best chain as (slot, first layer, end layer), or null when no chain of the allowed size fits.</summary>
    /// <param name="costs">The model's layer costs.</param>
    /// <param name="slots">The silos, each with a calibration, in a fixed order (ties go to the earlier).</param>
    /// <param name="options">Batch, hop cost and, when set, the exact stage count (at most <paramref name="slots"/>' count).</param>
    public static IReadOnlyList<(Slot Slot, int First, int End)>? Plan(LayerCosts costs, IReadOnlyList<Slot> slots, PlanOptions options)
    {
        if (slots.Count > MaxExhaustive)
            slots = slots.OrderBy(s => Seconds(s, costs, 0, costs.Layers, options.Batch)).Take(MaxExhaustive).ToList();
        int n = slots.Count, full = (1 << n) - 1, layers = costs.Layers;

        // Phase 1: the smallest bottleneck each set of silos reaches over the whole model.
        var bottleneck = Solve(costs, slots, options.Batch, full, Math.Max, double.PositiveInfinity, out _);
        bool any = false;
        double bestObjective = double.PositiveInfinity;
        foreach (int mask in Enumerable.Range(1, full).OrderBy(m => System.Numerics.BitOperations.PopCount((uint)m)).ThenBy(m => m))
        {
            int count = System.Numerics.BitOperations.PopCount((uint)mask);
            if (options.Stages is int k && count != k) continue;
            double t = bottleneck[mask][layers];
            if (double.IsPositiveInfinity(t)) continue;
            double objective = t + options.HopSeconds * (count - 1);
            if (Better(objective, bestObjective)) (any, bestObjective) = (true, objective);
        }
        if (!any) return null;

        // Phase 2: among the chains that reach that objective (the bottleneck alone leaves the other stages free, and
        // another set of silos may tie), the one whose stages add up to the least. Per stage count, since the hops
        // leave each count its own bottleneck to stay within.
        double bestSum = double.PositiveInfinity;
        int chosen = 0;
        (int Slot, int Start)[][] parent = [];
        for (int count = 1; count <= n; count++)
        {
            if (options.Stages is int k && count != k) continue;
            double cap = bestObjective * (1 + 1e-9) + 1e-15 - options.HopSeconds * (count - 1);
            if (!Enumerable.Range(1, full).Any(m => System.Numerics.BitOperations.PopCount((uint)m) == count && bottleneck[m][layers] <= cap)) continue;
            var sums = Solve(costs, slots, options.Batch, full, (a, b) => a + b, cap, out var from);
            foreach (int mask in Enumerable.Range(1, full).Where(m => System.Numerics.BitOperations.PopCount((uint)m) == count))
                if (Better(sums[mask][layers], bestSum)) (bestSum, chosen, parent) = (sums[mask][layers], mask, from);
        }
        var chain = new List<(Slot, int, int)>();
        for (int mask = chosen, end = layers; mask != 0;)
        {
            var (j, start) = parent[mask][end];
            chain.Add((slots[j], start, end));
            mask &= ~(1 << j);
            end = start;
        }
        chain.Reverse();
        return chain;
    }

    // Clearly better, so that rounding never decides between equal plans: the earlier one found stays.
    private static bool Better(double value, double best) =>
        double.IsPositiveInfinity(best) ? !double.IsPositiveInfinity(value) : value < best - Tie * Math.Abs(best);

    /// <summary>Predicted step time of [first, end) on the slot's silo.</summary>
    public static double Seconds(Slot slot, LayerCosts costs, int first, int end, int batch) =>
        slot.Silo.Calibration!.StageSeconds(costs.StepBytes(first, end), costs.StepFlops(first, end), end - first, batch);

    // value[mask][p]: the best value of covering layers [0, p) with exactly the silos of mask (each a non-empty
    // range, in some order), combining stage times with `combine`; stages slower than `cap` are not allowed. Only
    // subsets of `limit` are filled. parent[mask][p] is the last silo and where its range starts.
    private static double[][] Solve(LayerCosts costs, IReadOnlyList<Slot> slots, int batch, int limit,
        Func<double, double, double> combine, double cap, out (int Slot, int Start)[][] parent)
    {
        int layers = costs.Layers;
        // StageSeconds' three coefficients per silo, once: the inner loop runs up to 2^n x n x layers^2 times.
        var perLayer = slots.Select(s => s.Silo.Calibration!.SecondsPerLayer).ToArray();
        var perByte = slots.Select(s => s.Silo.Calibration!.SecondsPerByte).ToArray();
        var perFlop = slots.Select(s => s.Silo.Calibration!.SecondsPerFlop).ToArray();
        var value = new double[limit + 1][];
        parent = new (int, int)[limit + 1][];
        value[0] = new double[layers + 1];
        Array.Fill(value[0], double.PositiveInfinity);
        value[0][0] = 0;
        for (int mask = 1; mask <= limit; mask++)
        {
            if ((mask & ~limit) != 0) continue;
            var row = value[mask] = new double[layers + 1];
            var from = parent[mask] = new (int, int)[layers + 1];
            Array.Fill(row, double.PositiveInfinity);
            // Later silos are tried as the last stage first, so among equal chains the silos come in their given order.
            for (int j = slots.Count - 1; j >= 0; j--)
            {
                if ((mask & (1 << j)) == 0) continue;
                var before = value[mask & ~(1 << j)];
                long usable = slots[j].Usable;
                for (int p = 1; p <= layers; p++)
                {
                    for (int q = p - 1; q >= 0 && costs.Need(q, p) <= usable; q--)
                    {
                        if (double.IsPositiveInfinity(before[q])) continue;
                        double t = (p - q) * perLayer[j] + costs.StepBytes(q, p) * perByte[j] + (double)batch * costs.StepFlops(q, p) * perFlop[j];
                        if (t > cap) break; // earlier starts only add layers
                        double v = combine(before[q], t);
                        if (Better(v, row[p])) (row[p], from[p]) = (v, (j, q));
                    }
                }
            }
        }
        return value;
    }
}
