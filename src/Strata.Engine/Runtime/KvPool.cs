using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Strata.Engine.Runtime;

/// <summary>
/// The KV cache of one stage: for each layer a key and a value buffer of shape [slots, Nkv, M, D] (M = max context),
/// allocated once. A sequence owns one slot; a batch of rows is a contiguous run of slots, handed to ONNX Runtime as
/// views (no copies): GroupQueryAttention reads the past and writes new positions in place because the runtime binds
/// the same buffer as past input and present output.
/// </summary>
public sealed class KvPool : IDisposable
{
    private readonly IntPtr[] _keys;
    private readonly IntPtr[] _values;
    private readonly KvMemory _memory;
    private readonly TensorElementType _element;
    private readonly int _elementSize;
    private bool _disposed;

    internal KvPool(KvMemory memory, int layers, int slots, int kvHeads, int maxContext, int headDim, TensorElementType element, int elementSize)
    {
        Layers = layers;
        Slots = slots;
        KvHeads = kvHeads;
        MaxContext = maxContext;
        HeadDim = headDim;
        _element = element;
        _elementSize = elementSize;
        _memory = memory;
        SlotBytes = (long)kvHeads * maxContext * headDim * elementSize;
        _keys = new IntPtr[layers];
        _values = new IntPtr[layers];
        try
        {
            for (int l = 0; l < layers; l++)
            {
                _keys[l] = memory.Allocate(SlotBytes * slots);
                _values[l] = memory.Allocate(SlotBytes * slots);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Layers of the stage.</summary>
    public int Layers { get; }
    /// <summary>Sequences the pool holds at once.</summary>
    public int Slots { get; }
    /// <summary>KV heads.</summary>
    public int KvHeads { get; }
    /// <summary>Positions per slot.</summary>
    public int MaxContext { get; }
    /// <summary>Head width.</summary>
    public int HeadDim { get; }
    /// <summary>Bytes of one slot of one layer's key (or value) buffer.</summary>
    public long SlotBytes { get; }
    /// <summary>Total bytes held (keys and values of every layer and slot).</summary>
    public long TotalBytes => SlotBytes * Slots * Layers * 2;

    /// <summary>KV bytes one position costs in this stage (all its layers, keys and values).</summary>
    public long BytesPerPosition => (long)KvHeads * HeadDim * _elementSize * Layers * 2;

    /// <summary>Views of the key and value buffers of local layer <paramref name="layer"/> for slots
    /// [<paramref name="firstSlot"/>, firstSlot + <paramref name="count"/>). The caller disposes them.</summary>
    internal (OrtValue Key, OrtValue Value) View(int layer, int firstSlot, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (firstSlot < 0 || count < 1 || firstSlot + count > Slots)
            throw new ArgumentOutOfRangeException(nameof(firstSlot), $"slots [{firstSlot}, {firstSlot + count}) are outside the pool's {Slots}");
        long[] shape = [count, KvHeads, MaxContext, HeadDim];
        long offset = SlotBytes * firstSlot, bytes = SlotBytes * count;
        return (OrtValue.CreateTensorValueWithData(_memory.Info, _element, shape, _keys[layer] + (nint)offset, bytes),
                OrtValue.CreateTensorValueWithData(_memory.Info, _element, shape, _values[layer] + (nint)offset, bytes));
    }

    /// <summary>Whether <see cref="Export"/> and <see cref="Import"/> can reach the buffers (host memory).</summary>
    public bool CanCopy => _memory is HostKvMemory;

    /// <summary>Element size in bytes of the cache (4 for fp32, 2 for fp16).</summary>
    public int ElementSize => _elementSize;

    /// <summary>Copies positions [<paramref name="from"/>, from + <paramref name="count"/>) of
    /// <paramref name="slot"/>, every layer's keys then values, each head's positions in order, into one buffer of
    /// <c>count * BytesPerPosition</c> bytes (what <see cref="Import"/> takes on a stage of the same shape).</summary>
    public unsafe byte[] Export(int slot, int from, int count)
    {
        CheckCopy(slot, from, count);
        var data = new byte[count * BytesPerPosition];
        fixed (byte* target = data) Copy(slot, from, count, target, toPacked: true);
        return data;
    }

    /// <summary>Writes positions [<paramref name="position"/>, position + n) of <paramref name="slot"/> from a
    /// buffer that <see cref="Export"/> made on a stage of the same shape (n = its length / BytesPerPosition).</summary>
    public unsafe void Import(int slot, int position, ReadOnlySpan<byte> data)
    {
        if (data.Length == 0 || data.Length % BytesPerPosition != 0)
            throw new ArgumentException($"KV data of {data.Length} bytes is not a whole number of positions of {BytesPerPosition} bytes");
        int count = (int)(data.Length / BytesPerPosition);
        CheckCopy(slot, position, count);
        fixed (byte* source = data) Copy(slot, position, count, source, toPacked: false);
    }

    /// <summary>Walks positions [<paramref name="position"/>, position + <paramref name="count"/>) of
    /// <paramref name="slot"/> in the packed order (every layer's keys then values, each head's positions) and copies
    /// each run between the cache and <paramref name="packed"/>, in the direction <paramref name="toPacked"/> says.</summary>
    private unsafe void Copy(int slot, int position, int count, byte* packed, bool toPacked)
    {
        long run = (long)count * HeadDim * _elementSize;
        long at = 0;
        for (int l = 0; l < Layers; l++)
            for (int kv = 0; kv < 2; kv++)
                for (int h = 0; h < KvHeads; h++, at += run)
                {
                    byte* cache = (byte*)((kv == 0 ? _keys[l] : _values[l]) + (nint)Offset(slot, h, position));
                    if (toPacked) Buffer.MemoryCopy(cache, packed + at, run, run);
                    else Buffer.MemoryCopy(packed + at, cache, run, run);
                }
    }

    private long Offset(int slot, int head, int position) => SlotBytes * slot + ((long)head * MaxContext + position) * HeadDim * _elementSize;

    private void CheckCopy(int slot, int from, int count)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!CanCopy) throw new NotSupportedException("the KV cache lives in device memory; it is rebuilt by replay instead of copied");
        if ((uint)slot >= (uint)Slots) throw new ArgumentOutOfRangeException(nameof(slot), $"slot {slot} is outside the pool's {Slots}");
        if (from < 0 || count < 1 || from + count > MaxContext)
            throw new ArgumentOutOfRangeException(nameof(count), $"positions [{from}, {from + count}) are outside a slot's {MaxContext}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _memory.Dispose();
    }
}
