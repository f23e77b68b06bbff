using Strata.Models.Planning;

namespace Strata.Models.Tests.Planning;

/// <summary>Many seeded random inputs: every plan is valid, and on small inputs the planner agrees with brute force.</summary>
public class PlannerPropertyTests
{
    private sealed record Case(ModelFootprint Model, SiloCapacity[] Silos, PlanOptions Options);

    private static Case RandomCase(Random rng, bool small)
    {
        int layers = rng.Next(1, small ? 9 : 61);
        var model = new ModelFootprint(
            rng.Next(0, 150),
            Enumerable.Range(0, layers).Select(_ => (long)rng.Next(1, 100)).ToArray(),
            rng.Next(0, 150),
            rng.Next(0, 3));
        int speeds = rng.Next(3); // none, all, some
        var silos = Enumerable.Range(0, rng.Next(1, small ? 5 : 8)).Select(i => new SiloCapacity(
            $"s{rng.Next(1000):D3}-{i}",
            rng.Next(3) == 0 ? "cpu" : $"cuda:{rng.Next(2)}",
            rng.Next(1, small ? 400 : 1500),
            speeds == 1 || (speeds == 2 && rng.Next(2) == 0) ? Math.Round(0.5 + rng.NextDouble() * 3, 2) : null)).ToArray();
        var options = new PlanOptions
        {
            Stages = rng.Next(2) == 0 ? null : rng.Next(1, layers + 2),
            KvTokens = rng.Next(0, 20),
            Headroom = Math.Round(rng.NextDouble() * 0.3, 3),
            AllowSeveralStagesPerSilo = rng.Next(4) != 0,
        };
        return new Case(model, silos, options);
    }

    private static (StagePlan? Plan, string? Error) TryPlan(Case c, IReadOnlyList<SiloCapacity> silos)
    {
        try
        {
            return (StagePlanner.Plan(c.Model, silos, c.Options), null);
        }
        catch (PlanningException e)
        {
            return (null, e.Message);
        }
    }

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, true)]
    public void Random_plans_cover_every_layer_once_and_respect_memory(int seed, bool small)
    {
        var rng = new Random(seed);
        int planned = 0;
        for (int n = 0; n < 300; n++)
        {
            var c = RandomCase(rng, small);
            var (plan, error) = TryPlan(c, c.Silos);
            var shuffled = c.Silos.OrderBy(_ => rng.Next()).ToArray();
            var again = TryPlan(c, shuffled);
            Assert.Equal(plan, again.Plan);
            Assert.Equal(error, again.Error);

            long need = Need(c, 0, c.Model.LayerCount);
            if (plan is not null)
            {
                planned++;
                PlanAssert.Valid(plan, c.Model, c.Silos, c.Options);
                int distinct = plan.Silos.Count;
                if (c.Options.Stages is int k) Assert.Equal(k, plan.Stages.Count);
                if (c.Options.Stages is null || !c.Options.AllowSeveralStagesPerSilo || c.Options.Stages <= c.Silos.Length)
                    Assert.Equal(plan.Stages.Count, distinct);
            }
            if (c.Options.Stages is null && c.Silos.Any(s => c.Options.Usable(s.MemoryBytes) >= need))
                Assert.Single(plan!.Stages);

            if (small) AgreesWithBruteForce(c, plan);
        }
        Assert.True(planned > 60, $"only {planned} of 300 random cases could be planned; the generator needs retuning");
    }

    // Every way of giving consecutive layer ranges to distinct silos, in every order: the fewest silos that cover
    // the model, and whether exactly K of them can.
    private static void AgreesWithBruteForce(Case c, StagePlan? plan)
    {
        var reachable = new HashSet<int>(); // silo counts with which some cover exists
        Cover(c, 0, 0, 0, reachable);
        if (c.Options.Stages is null)
            Assert.Equal(reachable.Count == 0 ? null : reachable.Min(), plan?.Stages.Count);
        else if (c.Options.Stages <= c.Silos.Length)
            Assert.True(reachable.Contains(c.Options.Stages.Value) == (plan is not null), $"brute force disagrees on layers {string.Join(",", c.Model.LayerBytes)} e={c.Model.EmbeddingBytes} h={c.Model.HeadBytes} kv={c.Model.KvBytesPerTokenPerLayer} {c.Options} silos={string.Join(";", c.Silos.Select(s => $"{s.SiloId}/{s.Device}/{s.MemoryBytes}/{c.Options.Usable(s.MemoryBytes)}/{s.Speed}"))} plan={plan}");
    }

    private static void Cover(Case c, int start, int used, int count, HashSet<int> reachable)
    {
        int layers = c.Model.LayerCount;
        if (start == layers)
        {
            reachable.Add(count);
            return;
        }
        for (int j = 0; j < c.Silos.Length; j++)
        {
            if ((used & (1 << j)) != 0) continue;
            long usable = c.Options.Usable(c.Silos[j].MemoryBytes);
            for (int end = start + 1; end <= layers && Need(c, start, end) <= usable; end++)
                Cover(c, end, used | (1 << j), count + 1, reachable);
        }
    }

    private static long Need(Case c, int first, int end)
    {
        var m = c.Model;
        return m.LayerBytes.Skip(first).Take(end - first).Sum()
               + (first == 0 ? m.EmbeddingBytes : 0) + (end == m.LayerCount ? m.HeadBytes : 0)
               + (long)c.Options.KvTokens * m.KvBytesPerTokenPerLayer * (end - first);
    }
}
