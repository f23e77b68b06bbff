namespace Strata.Models.Planning;

/// <summary>
/// Places single shards once a plan exists: a replica of a planned stage, or a replacement for a stage whose silo was
/// lost. A pure function of the silos, the bytes already placed on each and the shard's size, so the model grain's
/// decisions can be tested without a cluster.
/// </summary>
public static class ShardPlacement
{
    /// <summary>
    /// The silo that should take a shard of <paramref name="bytes"/>: among the silos not in
    /// <paramref name="excluded"/> whose usable memory (after <see cref="PlanOptions.Headroom"/>) still holds it next
    /// to what <paramref name="usedBytes"/> says is placed there, the one with the most memory left afterwards
    /// (accelerators before CPUs, then the silo id, so equal inputs give equal answers). Null when none fits.
    /// </summary>
    /// <param name="bytes">Weights plus KV of the shard.</param>
    /// <param name="silos">The silos that may take it (active, advertising capacity).</param>
    /// <param name="usedBytes">Bytes already placed on each silo by this deployment.</param>
    /// <param name="excluded">Silos that must not take it: those holding another replica of the same stage, or
    /// found unreachable.</param>
    /// <param name="options">Headroom.</param>
    public static string? Choose(long bytes, IReadOnlyList<SiloCapacity> silos, IReadOnlyDictionary<string, long> usedBytes,
        IReadOnlySet<string> excluded, PlanOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        options ??= new PlanOptions();
        return silos
            .Where(s => !excluded.Contains(s.SiloId))
            .Select(s => (Silo: s, Left: options.Usable(s.MemoryBytes) - usedBytes.GetValueOrDefault(s.SiloId) - bytes))
            .Where(c => c.Left >= 0)
            .OrderByDescending(c => c.Left)
            .ThenBy(c => c.Silo.IsCpu)
            .ThenBy(c => c.Silo.SiloId, StringComparer.Ordinal)
            .Select(c => c.Silo.SiloId)
            .FirstOrDefault();
    }

    /// <summary>
    /// Replicas for the stages of <paramref name="plan"/>: up to <paramref name="replicas"/> shards per stage in
    /// total (null = as many as fit), each on a silo that holds no other shard of that stage. Replicas are added
    /// round by round (every stage's second shard before any third), so spare capacity is shared fairly. Returns the
    /// extra shards as (stage index, replica number, silo id); the plan's own shards are replica 0.
    /// </summary>
    public static IReadOnlyList<(int Stage, int Replica, string SiloId)> Replicas(StagePlan plan, IReadOnlyList<SiloCapacity> silos,
        int? replicas, PlanOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (replicas is < 1) throw new ArgumentOutOfRangeException(nameof(replicas), replicas, "replicas must be at least 1");
        var used = new Dictionary<string, long>(StringComparer.Ordinal);
        var holders = plan.Stages.Select(s => new HashSet<string>(StringComparer.Ordinal) { s.SiloId }).ToArray();
        foreach (var s in plan.Stages) used[s.SiloId] = used.GetValueOrDefault(s.SiloId) + s.TotalBytes;

        var extra = new List<(int, int, string)>();
        int limit = replicas ?? silos.Count;
        for (int round = 1; round < limit; round++)
        {
            bool placed = false;
            foreach (var stage in plan.Stages)
            {
                if (Choose(stage.TotalBytes, silos, used, holders[stage.Index], options) is not string silo) continue;
                used[silo] = used.GetValueOrDefault(silo) + stage.TotalBytes;
                holders[stage.Index].Add(silo);
                extra.Add((stage.Index, round, silo));
                placed = true;
            }
            if (!placed) break;
        }
        return extra;
    }
}
