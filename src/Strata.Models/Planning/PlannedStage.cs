using System.Globalization;

namespace Strata.Models.Planning;

/// <summary>One stage of a plan: a contiguous layer range and the silo that runs it.</summary>
/// <param name="Index">Position in the chain (0 = first; the first stage also holds the embedding, the last the head).</param>
/// <param name="FirstLayer">First decoder layer (inclusive).</param>
/// <param name="EndLayer">One past the last decoder layer (exclusive).</param>
/// <param name="SiloId">The silo the stage's shard is placed on.</param>
/// <param name="WeightBytes">Weight bytes the stage loads: its layers, plus the embedding or head where it holds them.</param>
/// <param name="KvBytes">KV cache bytes the stage reserves: KV tokens x bytes per token per layer x its layer count.</param>
public sealed record PlannedStage(int Index, int FirstLayer, int EndLayer, string SiloId, long WeightBytes, long KvBytes)
{
    /// <summary>Number of layers.</summary>
    public int LayerCount => EndLayer - FirstLayer;

    /// <summary>Memory the stage needs on its silo: weights plus KV.</summary>
    public long TotalBytes => WeightBytes + KvBytes;

    /// <summary>One line: <c>stage 0: layers 0-47 (48) on silo-a, weights 58.7 GB + KV 1.6 GB = 60.3 GB</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"stage {Index}: layers {FirstLayer}-{EndLayer - 1} ({LayerCount}) on {SiloId}, weights {ByteSize.Format(WeightBytes)} + KV {ByteSize.Format(KvBytes)} = {ByteSize.Format(TotalBytes)}");
}
