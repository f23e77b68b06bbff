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

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _memory.Dispose();
    }
}
