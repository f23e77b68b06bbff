namespace Strata.Engine.Reference;

/// <summary>
/// The keys (after RoPE) and values of one layer for one sequence, up to a fixed capacity.
/// Keys and values are each [capacity, kvHeads * headDim]; rows [0, Length) are filled.
/// </summary>
public sealed class LayerKvCache
{
    private readonly float[] _keys;   // [capacity, kvHeads * headDim]
    private readonly float[] _values; // [capacity, kvHeads * headDim]
    private readonly int _headDim;
    private readonly int _rowWidth;   // kvHeads * headDim

    /// <summary>Creates an empty cache for <paramref name="capacity"/> positions.</summary>
    public LayerKvCache(int capacity, int kvHeads, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        _headDim = headDim;
        _rowWidth = kvHeads * headDim;
        _keys = new float[capacity * _rowWidth];
        _values = new float[capacity * _rowWidth];
    }

    /// <summary>Positions this cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions filled; the next token appended sits at this position.</summary>
    public int Length { get; private set; }

    /// <summary>The key of position <paramref name="position"/>, kv head <paramref name="kvHead"/> ([headDim]).</summary>
    public ReadOnlySpan<float> Key(int position, int kvHead) =>
        _keys.AsSpan(position * _rowWidth + kvHead * _headDim, _headDim);

    /// <summary>The value of position <paramref name="position"/>, kv head <paramref name="kvHead"/> ([headDim]).</summary>
    public ReadOnlySpan<float> Value(int position, int kvHead) =>
        _values.AsSpan(position * _rowWidth + kvHead * _headDim, _headDim);

    /// <summary>Appends <paramref name="seq"/> rows of keys and values, each [seq, kvHeads * headDim].</summary>
    public void Append(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int seq)
    {
        if (Length + seq > Capacity)
            throw new InvalidOperationException(
                $"KV cache is full: {Length} positions held, {seq} more do not fit in {Capacity}; create the session with a larger maxSeqLen");
        keys[..(seq * _rowWidth)].CopyTo(_keys.AsSpan(Length * _rowWidth));
        values[..(seq * _rowWidth)].CopyTo(_values.AsSpan(Length * _rowWidth));
        Length += seq;
    }

    /// <summary>Forgets every position from <paramref name="length"/> on (rolls the sequence back).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Length);
        Length = length;
    }
}
