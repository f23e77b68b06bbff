namespace Strata.Models.Planning;

/// <summary>
/// Finds an order of slots along the chain in which the model fits. The preferred order usually does; when it does
/// not (the embedding or head lands where it wastes a slot's last few gigabytes), another order may, and missing it
/// would cost a stage. Up to <see cref="MaxExhaustive"/> slots, orders are searched exactly by dynamic programming over
/// subsets: the layer positions each set of slots can cover up to. (Keeping only the furthest position is not enough:
/// a slot that can take only a small layer may need a set that stopped early.)
/// </summary>
internal static class ChainOrder
{
    /// <summary>Above this many slots only the preferred order is tried (the search is 2^n x n x layers).</summary>
    public const int MaxExhaustive = 10;

    /// <summary><paramref name="slots"/> in an order whose split covers every layer, the given order when that
    /// works; null when none is found.</summary>
    public static IReadOnlyList<Slot>? Find(LayerCosts costs, IReadOnlyList<Slot> slots)
    {
        if (LayerSplitter.Split(costs, 0, costs.Layers, slots, null) is not null) return slots;
        int n = slots.Count, layers = costs.Layers;
        if (n > MaxExhaustive) return null;

        int full = (1 << n) - 1, totalStages = slots.Sum(s => s.Stages);
        var stagesIn = new int[full + 1];
        for (int mask = 1; mask <= full; mask++)
        {
            int j = System.Numerics.BitOperations.TrailingZeroCount(mask);
            stagesIn[mask] = stagesIn[mask & (mask - 1)] + slots[j].Stages;
        }
        // The furthest a slot may end when it completes `mask`: it must leave a layer for every later stage.
        int Room(int mask) => layers - (totalStages - stagesIn[mask]);

        // ends[j][p]: the furthest slot j can reach from layer p; it does not depend on which slots came before.
        var ends = slots.Select(s => Enumerable.Range(0, layers + 1).Select(p => LayerSplitter.MaxEnd(costs, s, p, layers)).ToArray()).ToArray();

        // reach[mask][p]: the slots in mask, in some order, can cover exactly [0, p). Built from difference counts.
        var reach = new bool[full + 1][];
        var delta = new int[full + 1][];
        reach[0] = new bool[layers + 1];
        reach[0][0] = true;
        for (int mask = 0; mask <= full; mask++)
        {
            if (mask > 0)
            {
                if (delta[mask] is null) continue;
                reach[mask] = new bool[layers + 1];
                for (int p = 0, run = 0; p <= layers; p++) reach[mask][p] = (run += delta[mask][p]) > 0;
                delta[mask] = null!;
            }
            for (int p = 0; p < layers && mask != full; p++)
            {
                if (!reach[mask][p]) continue;
                for (int j = 0; j < n; j++)
                {
                    if ((mask & (1 << j)) != 0) continue;
                    int next = mask | (1 << j);
                    int first = p + slots[j].Stages, last = Math.Min(ends[j][p], Room(next));
                    if (first > last) continue;
                    var d = delta[next] ??= new int[layers + 2];
                    d[first]++;
                    d[last + 1]--;
                }
            }
        }
        if (reach[full] is not { } covered || !covered[layers]) return null;

        // Walk back from the whole model; the least preferred slot that can end the chain goes last.
        var order = new Slot[n];
        for (int mask = full, end = layers, i = n - 1; i >= 0; i--)
        {
            (int slot, int start) = LastStep(slots, ends, reach, mask, end, Room(mask));
            order[i] = slots[slot];
            mask &= ~(1 << slot);
            end = start;
        }
        return order;
    }

    private static (int Slot, int Start) LastStep(IReadOnlyList<Slot> slots, int[][] ends, bool[][] reach, int mask, int end, int room)
    {
        for (int j = slots.Count - 1; j >= 0; j--)
        {
            if ((mask & (1 << j)) == 0 || end > room) continue;
            var before = reach[mask & ~(1 << j)];
            if (before is null) continue;
            for (int p = end - slots[j].Stages; p >= 0; p--)
                if (before[p] && ends[j][p] >= end) return (j, p);
        }
        throw new InvalidOperationException("chain order table out of step");
    }
}
