using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Strata.Engine.Runtime;

/// <summary>Where a <see cref="KvPool"/> keeps its buffers: host memory for the CPU, device memory for CUDA
/// (so attention never copies the cache across the bus).</summary>
internal abstract class KvMemory : IDisposable
{
    /// <summary>The memory info that views over these buffers carry.</summary>
    public abstract OrtMemoryInfo Info { get; }

    /// <summary>Allocates a zeroed (CPU) or uninitialized (device) buffer; freed by <see cref="Dispose"/>.</summary>
    public abstract IntPtr Allocate(long bytes);

    public abstract void Dispose();
}

/// <summary>64-byte aligned native host memory.</summary>
internal sealed unsafe class HostKvMemory : KvMemory
{
    private readonly List<IntPtr> _buffers = [];

    public override OrtMemoryInfo Info => OrtMemoryInfo.DefaultInstance;

    public override IntPtr Allocate(long bytes)
    {
        var p = NativeMemory.AlignedAlloc((nuint)bytes, 64);
        NativeMemory.Clear(p, (nuint)bytes);
        _buffers.Add((IntPtr)p);
        return (IntPtr)p;
    }

    public override void Dispose()
    {
        foreach (var p in _buffers) NativeMemory.AlignedFree((void*)p);
        _buffers.Clear();
    }
}

/// <summary>CUDA device memory from the session's CUDA allocator. Each buffer is an allocated tensor; views are
/// pointer offsets into it. Attention reads only positions below each row's length, so no zeroing is needed.</summary>
internal sealed unsafe class CudaKvMemory(InferenceSession session, int deviceId, TensorElementType element) : KvMemory
{
    private readonly OrtMemoryInfo _info = new(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
    private readonly List<OrtValue> _buffers = [];
    private OrtAllocator? _allocator;

    public override OrtMemoryInfo Info => _info;

    public override IntPtr Allocate(long bytes)
    {
        _allocator ??= new OrtAllocator(session, _info);
        int elementSize = element == TensorElementType.Float16 ? 2 : 4;
        var value = OrtValue.CreateAllocatedTensorValue(_allocator, element, [bytes / elementSize]);
        _buffers.Add(value);
        // The span is never dereferenced on the host: it only carries the device address.
        return (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(value.GetTensorMutableRawData()));
    }

    public override void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        _allocator?.Dispose();
        _info.Dispose();
    }
}
