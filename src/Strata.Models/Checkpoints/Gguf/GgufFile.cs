using System.IO.MemoryMappedFiles;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>One tensor of a GGUF file, as its header describes it.</summary>
/// <param name="Name">The llama.cpp name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Type">Element type.</param>
/// <param name="Dims">Dimensions in ggml's order: <c>Dims[0]</c> is the innermost (contiguous) one.</param>
/// <param name="Offset">Absolute byte offset of the data in the file.</param>
/// <param name="ByteLength">Bytes of data.</param>
public sealed record GgufTensor(string Name, GgmlType Type, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>The shape outermost first (Hugging Face's order): <see cref="Dims"/> reversed.</summary>
    public long[] Shape => Dims.Reverse().ToArray();

    /// <summary>Number of elements.</summary>
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape written as [a, b], outermost first.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// One memory-mapped GGUF file (the format of llama.cpp and Ollama, versions 2 and 3): the magic <c>GGUF</c>, a
/// version, tensor and metadata counts, typed key/value metadata, tensor infos, then the tensor data aligned to
/// <c>general.alignment</c> (32 by default). Every structural problem is reported as a
/// <see cref="ModelFormatException"/> naming the file and the key or tensor; counts and lengths are checked against
/// the bytes the file holds before anything is allocated for them, so a hostile header cannot exhaust memory.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>The first four bytes of every GGUF file.</summary>
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    /// <summary>The alignment of tensor data when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;
    /// <summary>The most dimensions a ggml tensor has.</summary>
    public const int MaxDims = 4;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;
    private bool _disposed;

    private GgufFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr, int version,
        Dictionary<string, GgufValue> metadata, Dictionary<string, GgufTensor> tensors, long dataStart, int alignment)
    {
        Path = path;
        _map = map;
        _view = view;
        _base = basePtr;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        DataStart = dataStart;
        Alignment = alignment;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The GGUF version (2 or 3).</summary>
    public int Version { get; }

    /// <summary>Metadata by key, e.g. <c>general.architecture</c>.</summary>
    public IReadOnlyDictionary<string, GgufValue> Metadata { get; }

    /// <summary>The tensors, by llama.cpp name.</summary>
    public IReadOnlyDictionary<string, GgufTensor> Tensors { get; }

    /// <summary>Absolute offset of the tensor data section.</summary>
    public long DataStart { get; }

    /// <summary>Alignment of tensor data in bytes.</summary>
    public int Alignment { get; }

    /// <summary>Opens a GGUF file and validates its header and every tensor's extent.</summary>
    /// <exception cref="ModelFormatException">The file is missing, truncated, not GGUF, or malformed.</exception>
    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, null, "file not found");
        long length = new FileInfo(path).Length;
        if (length < 4)
            throw new ModelFormatException(path, null, $"truncated: {length} bytes is shorter than the 4-byte GGUF magic");
        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            var header = new GgufHeaderReader(path, p, length).Read();
            return new GgufFile(path, map, view, p, header.Version, header.Metadata, header.Tensors, header.DataStart, header.Alignment);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    /// <summary>Whether <paramref name="path"/> is a file that starts with the GGUF magic.</summary>
    public static bool LooksLikeGguf(string path)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var f = File.OpenRead(path);
            Span<byte> magic = stackalloc byte[4];
            return f.Read(magic) == 4 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(magic) == Magic;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The stored bytes of part of a tensor, valid while the file is open.</summary>
    /// <param name="tensor">A tensor of this file.</param>
    /// <param name="start">Byte offset inside the tensor.</param>
    /// <param name="length">Bytes wanted (at most 2 GiB per call).</param>
    public ReadOnlySpan<byte> Bytes(GgufTensor tensor, long start, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || length < 0 || start + length > tensor.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(length), $"byte range [{start}, {start + length}) is outside tensor {tensor.Name}");
        return new ReadOnlySpan<byte>(_base + tensor.Offset + start, length);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }
}
