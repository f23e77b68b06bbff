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
/// <param name="LayerFlopsPerToken">Matrix FLOPs of each decoder layer per token (2 per weight), or null to count
/// them from the bytes as fp32 weights (bytes / 2). Only step-time predictions use them.</param>
/// <param name="HeadFlopsPerToken">Matrix FLOPs of the LM head per token, or null for <paramref name="HeadBytes"/> / 2.</param>
public sealed record ModelFootprint(long EmbeddingBytes, IReadOnlyList<long> LayerBytes, long HeadBytes, long KvBytesPerTokenPerLayer,
    IReadOnlyList<long>? LayerFlopsPerToken = null, long? HeadFlopsPerToken = null)
{
    /// <summary>FLOPs per token of layer <paramref name="layer"/>: as given, or counted from its bytes as fp32.</summary>
    public long LayerFlops(int layer) => LayerFlopsPerToken is { } f ? f[layer] : LayerBytes[layer] / 2;

    /// <summary>FLOPs per token of the head: as given, or counted from its bytes as fp32.</summary>
    public long HeadFlops => HeadFlopsPerToken ?? HeadBytes / 2;

    /// <summary>Matrix FLOPs per token of one decoder layer of <paramref name="config"/>: 2 per weight of the
    /// attention projections and the gated MLP (attention over the context is left out: decode at short contexts).</summary>
    public static long LayerFlopsOf(Config.LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        long h = config.HiddenSize, q = (long)config.NumHeads * config.HeadDim, kv = (long)config.NumKvHeads * config.HeadDim;
        return 2 * (h * q + 2 * h * kv + q * h + 3 * h * config.IntermediateSize);
    }

    /// <summary>Matrix FLOPs per token of the LM head of <paramref name="config"/>.</summary>
    public static long HeadFlopsOf(Config.LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return 2L * config.VocabSize * config.HiddenSize;
    }

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
            2L * manifest.Config.NumKvHeads * headDim * kvElementBytes,
            manifest.Layers.Select(l => l.Entry.Parameters > 0 ? 2 * l.Entry.Parameters : LayerFlopsOf(manifest.Config)).ToArray(),
            HeadFlopsOf(manifest.Config));
    }
}
