using Strata.Models.Planning;

namespace Strata.Models.Tests.Planning;

/// <summary>Footprints, silos and invariant checks shared by the planner tests.</summary>
internal static class PlanAssert
{
    public const long GB = 1_000_000_000;

    /// <summary>A 70B-like model: 80 layers, 8 KV heads of 128 in fp16 (4 KiB per token per layer, 320 KiB per token).</summary>
    public static ModelFootprint Llama70B(long layerBytes) =>
        new(1_050_000_000, Enumerable.Repeat(layerBytes, 80).ToArray(), 1_050_000_000, 4096);

    public static ModelFootprint Uniform(int layers, long layerBytes, long embedding = 0, long head = 0, long kvPerTokenPerLayer = 0) =>
        new(embedding, Enumerable.Repeat(layerBytes, layers).ToArray(), head, kvPerTokenPerLayer);

    /// <summary>The ground truth a plan must satisfy: stages in order, one layer at least each, every layer exactly
    /// once, byte counts as the footprint says, and no silo holding more than its usable memory.</summary>
    public static void Valid(StagePlan plan, ModelFootprint model, IReadOnlyList<SiloCapacity> silos, PlanOptions options)
    {
        Assert.NotEmpty(plan.Stages);
        int next = 0;
        for (int i = 0; i < plan.Stages.Count; i++)
        {
            var s = plan.Stages[i];
            Assert.Equal(i, s.Index);
            Assert.Equal(next, s.FirstLayer);
            Assert.True(s.EndLayer > s.FirstLayer, $"stage {i} has no layer");
            long weights = model.LayerBytes.Skip(s.FirstLayer).Take(s.LayerCount).Sum()
                           + (i == 0 ? model.EmbeddingBytes : 0) + (i == plan.Stages.Count - 1 ? model.HeadBytes : 0);
            Assert.Equal(weights, s.WeightBytes);
            Assert.Equal((long)options.KvTokens * model.KvBytesPerTokenPerLayer * s.LayerCount, s.KvBytes);
            next = s.EndLayer;
        }
        Assert.Equal(model.LayerCount, next);
        foreach (var group in plan.Stages.GroupBy(s => s.SiloId))
        {
            var silo = Assert.Single(silos, s => s.SiloId == group.Key);
            long usable = options.Usable(silo.MemoryBytes);
            Assert.True(group.Sum(s => s.TotalBytes) <= usable, $"silo {group.Key}: {group.Sum(s => s.TotalBytes)} bytes planned, {usable} usable");
            // A silo's stages are adjacent in the chain: activations between them stay on the machine.
            var indexes = group.Select(s => s.Index).ToList();
            Assert.Equal(indexes.Count - 1, indexes[^1] - indexes[0]);
        }
    }
}
