namespace Strata.Models.Planning;

/// <summary>The bytes of any contiguous layer range [first, end) of one model under one KV reservation, in O(1).</summary>
internal sealed class LayerCosts
{
    private readonly long[] _prefix; // _prefix[i] = bytes of layers [0, i)
    private readonly long[] _flops; // _flops[i] = FLOPs per token of layers [0, i)
    private readonly long _headFlops;
    private readonly long _embedding;
    private readonly long _head;

    public LayerCosts(ModelFootprint model, int kvTokens)
    {
        Layers = model.LayerCount;
        KvTokens = kvTokens;
        _embedding = model.EmbeddingBytes;
        _head = model.HeadBytes;
        KvPerLayer = checked((long)kvTokens * model.KvBytesPerTokenPerLayer);
        _prefix = new long[Layers + 1];
        for (int i = 0; i < Layers; i++) _prefix[i + 1] = checked(_prefix[i] + model.LayerBytes[i]);
        _flops = new long[Layers + 1];
        for (int i = 0; i < Layers; i++) _flops[i + 1] = checked(_flops[i] + model.LayerFlops(i));
        _headFlops = model.HeadFlops;
        _ = checked(_flops[Layers] + _headFlops);
        long max = 0;
        for (int i = 0; i < Layers; i++) max = Math.Max(max, model.LayerBytes[i]);
        LargestLayerNeed = checked(max + KvPerLayer);
        // The whole model is the largest range: once its total is known not to overflow, no range's does.
        _ = checked(_prefix[Layers] + _embedding + _head + KvPerLayer * Layers);
    }

    /// <summary>Number of decoder layers.</summary>
    public int Layers { get; }
    /// <summary>KV positions reserved per stage.</summary>
    public int KvTokens { get; }
    /// <summary>KV bytes one layer reserves.</summary>
    public long KvPerLayer { get; }
    /// <summary>The biggest single layer with its KV.</summary>
    public long LargestLayerNeed { get; }
    /// <summary>Embedding bytes (first stage only).</summary>
    public long EmbeddingBytes => _embedding;
    /// <summary>Head bytes (last stage only).</summary>
    public long HeadBytes => _head;

    /// <summary>Weight bytes of a stage holding [first, end): its layers, plus the embedding or head at the ends.</summary>
    public long Weights(int first, int end) =>
        _prefix[end] - _prefix[first] + (first == 0 ? _embedding : 0) + (end == Layers ? _head : 0);

    /// <summary>KV bytes a stage holding [first, end) reserves.</summary>
    public long Kv(int first, int end) => KvPerLayer * (end - first);

    /// <summary>Memory a stage holding [first, end) needs.</summary>
    public long Need(int first, int end) => Weights(first, end) + Kv(first, end);

    /// <summary>Bytes a stage reads per decode step: its layers and, on the last stage, the head (the embedding is a row lookup).</summary>
    public long StepBytes(int first, int end) => _prefix[end] - _prefix[first] + (end == Layers ? _head : 0);

    /// <summary>FLOPs per token of a stage holding [first, end): its layers and, on the last stage, the head.</summary>
    public long StepFlops(int first, int end) => _flops[end] - _flops[first] + (end == Layers ? _headFlops : 0);
}
