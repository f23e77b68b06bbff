namespace Strata.Engine.Reference;

/// <summary>
/// One sequence running through a contiguous range of a <see cref="ReferenceModel"/>'s layers:
/// the KV caches of layers [<see cref="FirstLayer"/>, <see cref="EndLayer"/>) and the position.
/// A session over all layers turns tokens into logits; a session over a middle range is a
/// pipeline stage that turns hidden states into hidden states, the way a stage graph does.
/// Not thread-safe: one sequence, one caller.
/// </summary>
public sealed class ReferenceSession
{
    private readonly ReferenceModel _model;
    private readonly LayerKvCache[] _caches; // one per layer in [FirstLayer, EndLayer)

    internal ReferenceSession(ReferenceModel model, int maxSeqLen, int firstLayer, int endLayer)
    {
        int layers = model.Config.NumLayers;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSeqLen);
        if (firstLayer < 0 || endLayer > layers || firstLayer >= endLayer)
            throw new ArgumentOutOfRangeException(nameof(firstLayer),
                $"layer range [{firstLayer}, {endLayer}) must be non-empty and inside [0, {layers})");
        _model = model;
        FirstLayer = firstLayer;
        EndLayer = endLayer;
        MaxSeqLen = maxSeqLen;
        _caches = new LayerKvCache[endLayer - firstLayer];
        for (int i = 0; i < _caches.Length; i++)
            _caches[i] = new LayerKvCache(maxSeqLen, model.Config.NumKvHeads, model.Config.HeadDim);
    }

    /// <summary>First layer this session runs.</summary>
    public int FirstLayer { get; }

    /// <summary>One past the last layer this session runs.</summary>
    public int EndLayer { get; }

    /// <summary>Positions the KV caches can hold.</summary>
    public int MaxSeqLen { get; }

    /// <summary>Tokens processed so far; the next token goes to this position.</summary>
    public int Position => _caches[0].Length;

    /// <summary>Whether the session spans every layer, so it can take tokens and give logits.</summary>
    public bool IsWholeModel => FirstLayer == 0 && EndLayer == _model.Config.NumLayers;

    /// <summary>The KV cache of <paramref name="layer"/> (an absolute layer index inside this session's range).</summary>
    public LayerKvCache Cache(int layer)
    {
        if (layer < FirstLayer || layer >= EndLayer)
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"layer must be in [{FirstLayer}, {EndLayer})");
        return _caches[layer - FirstLayer];
    }

    /// <summary>Appends <paramref name="tokens"/> at <see cref="Position"/> and returns the logits of the last one: [vocab].</summary>
    public float[] Forward(ReadOnlySpan<int> tokens)
    {
        float[] hidden = RunTokens(tokens);                                          // [seq, H]
        int h = _model.Config.HiddenSize;
        return _model.Head(hidden.AsSpan((tokens.Length - 1) * h, h).ToArray());    // [vocab]
    }

    /// <summary>Appends <paramref name="tokens"/> and returns the logits of every one of them: [seq, vocab], row-major.</summary>
    public float[] ForwardAll(ReadOnlySpan<int> tokens) => _model.Head(RunTokens(tokens));

    /// <summary>
    /// Runs this session's layers on hidden states <paramref name="hidden"/> [seq, hidden] that sit at
    /// positions <see cref="Position"/> onward, and returns the output hidden states [seq, hidden]
    /// (before the final norm). The input array is not modified.
    /// </summary>
    public float[] RunLayers(float[] hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        int h = _model.Config.HiddenSize;
        if (hidden.Length == 0 || hidden.Length % h != 0)
            throw new ArgumentException($"length {hidden.Length} is not a positive multiple of hidden size {h}", nameof(hidden));
        int seq = hidden.Length / h;
        if (Position + seq > MaxSeqLen)
            throw new InvalidOperationException(
                $"{seq} more tokens do not fit: position {Position}, maxSeqLen {MaxSeqLen}");

        float[] x = (float[])hidden.Clone(); // [seq, H], the residual stream
        for (int layer = FirstLayer; layer < EndLayer; layer++)
            _model.ForwardLayer(layer, x, seq, _caches[layer - FirstLayer]);
        return x;
    }

    /// <summary>Rolls the sequence back to <paramref name="position"/> tokens, forgetting the rest.</summary>
    public void Truncate(int position)
    {
        foreach (var cache in _caches) cache.Truncate(position);
    }

    private float[] RunTokens(ReadOnlySpan<int> tokens)
    {
        if (!IsWholeModel)
            throw new InvalidOperationException(
                $"this session runs layers [{FirstLayer}, {EndLayer}) only; token input needs all {_model.Config.NumLayers} (use RunLayers)");
        if (tokens.IsEmpty)
            throw new ArgumentException("at least one token is needed", nameof(tokens));
        return RunLayers(_model.Embed(tokens));
    }
}
