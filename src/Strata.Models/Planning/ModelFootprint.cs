using Strata.Models.Packaging;

namespace Strata.Models.Planning;

/// <summary>
/// What a model needs in memory, as the stage planner sees it: the weight bytes of each piece and the KV cache bytes
/// one token position costs in one layer. A plain record so the planner depends on numbers, not on packages.
/// </summary>
/// <param name="EmbeddingBytes">Bytes of the token embedding; the first stage holds it.</param>
/// <param name="LayerBytes">Bytes of each decoder layer, in order.</param>
/// <param name="HeadBytes">Bytes of the final norm and LM head (for a tied model, the head copy the engine makes); the last stage holds it.</param>
/// <param name="KvBytesPerTokenPerLayer">KV cache bytes of one token position in one layer (keys and values).</param>
public sealed record ModelFootprint(long EmbeddingBytes, IReadOnlyList<long> LayerBytes, long HeadBytes, long KvBytesPerTokenPerLayer)
{
    /// <summary>Number of decoder layers.</summary>
    public int LayerCount => LayerBytes.Count;

    /// <summary>Weight bytes of the whole model: embedding, every layer, head.</summary>
    public long WeightBytes => EmbeddingBytes + LayerBytes.Sum() + HeadBytes;

    /// <summary>KV cache bytes of one token position across all layers.</summary>
    public long KvBytesPerToken => KvBytesPerTokenPerLayer * LayerCount;

    /// <summary>
    /// The footprint of a model package: its weight files' sizes, and KV bytes per token per layer =
    /// 2 (keys and values) x KV heads x head width x <paramref name="kvElementBytes"/>. With tied embeddings the last
    /// stage holds (and reads every step) its own copy of the embedding as the LM head, so the head counts it too, unless
    /// the package stores a quantized head of its own (<c>--quant-head</c>), which the head file already holds.
    /// </summary>
    /// <param name="manifest">The package manifest.</param>
    /// <param name="kvElementBytes">Bytes of one KV cache element (2 for fp16/bf16, 4 for fp32).</param>
    /// <param name="kvHeadDim">The head width the KV buffers use, when the engine pads it; defaults to the model's head width.</param>
    public static ModelFootprint From(PackageManifest manifest, int kvElementBytes, int? kvHeadDim = null)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvElementBytes);
        int headDim = kvHeadDim ?? manifest.Config.HeadDim;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim, nameof(kvHeadDim));
        return new ModelFootprint(
            manifest.Embedding.Bytes,
            manifest.Layers.Select(l => l.Entry.Bytes).ToArray(),
            manifest.Head.Bytes + (PackageTensors.HeadNeedsEmbedding(manifest.Config, manifest.Quant) ? manifest.Embedding.Bytes : 0),
            2L * manifest.Config.NumKvHeads * headDim * kvElementBytes);
    }
}
