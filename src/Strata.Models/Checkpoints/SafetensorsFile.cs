using System.IO.MemoryMappedFiles;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Strata.Models.Checkpoints;

/// <summary>
/// One memory-mapped <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header
/// mapping tensor names to dtype, shape and data offsets, then the raw tensor bytes.
/// Every structural problem is reported as a <see cref="ModelFormatException"/> naming the file and tensor.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly Dictionary<string, TensorInfo> _tensors;

    // The limit the safetensors format itself sets on the JSON header.
    private const ulong MaxHeaderBytes = 100_000_000;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, Dictionary<string, TensorInfo> tensors)
    {
        Path = path;
        _map = map;
        _view = view;
        _tensors = tensors;
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The tensors in this file, by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>Opens and validates the header of a safetensors file.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException(path, null, "file not found");
        long length = new FileInfo(path).Length;
        if (length < 8)
            throw new ModelFormatException(path, null, $"truncated: {length} bytes is shorter than the 8-byte header length");

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            ulong headerLen = view.ReadUInt64(0);
            if (headerLen > (ulong)(length - 8))
                throw new ModelFormatException(path, null,
                    $"header length {headerLen} runs past the end of the file ({length} bytes); the file is truncated or not safetensors");
            // The format caps the header at 100 MB; an empty one would not even hold "{}".
            if (headerLen is < 2 or > MaxHeaderBytes)
                throw new ModelFormatException(path, null,
                    $"header length {headerLen} is outside [2, {MaxHeaderBytes}] bytes; the file is corrupt or not safetensors");
            var header = new byte[(int)headerLen];
            view.ReadArray(8, header, 0, header.Length);
            Dictionary<string, TensorInfo> tensors;
            try
            {
                tensors = ParseHeader(path, header, dataStart: 8 + (long)headerLen, fileLength: length);
            }
            catch (InvalidOperationException e)
            {
                // System.Text.Json decodes strings lazily: bad UTF-8 or a lone surrogate escape fails on first read.
                throw new ModelFormatException(path, null, $"header holds a string that is not valid Unicode: {e.Message}", e);
            }
            return new SafetensorsFile(path, map, view, tensors);
        }
        catch
        {
            view?.Dispose();
            map.Dispose();
            throw;
        }
    }

    private static Dictionary<string, TensorInfo> ParseHeader(string path, byte[] header, long dataStart, long fileLength)
    {
        JsonObject root;
        try
        {
            // Duplicate names are refused while parsing; JsonObject would otherwise throw ArgumentException on first use.
            root = JsonNode.Parse(header, null, new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                   ?? throw new ModelFormatException(path, null, "header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(path, null, $"header is not valid JSON: {e.Message}", e);
        }

        var result = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__") continue;
            if (node is not JsonObject t) throw new ModelFormatException(path, name, "header entry is not an object");

            string dtypeText = t["dtype"] is JsonValue dv && dv.GetValueKind() == JsonValueKind.String ? dv.GetValue<string>() : "(missing)";
            if (!TensorDTypes.TryParseSafetensors(dtypeText, out var dtype))
                throw new ModelFormatException(path, name, $"dtype '{dtypeText}' is not supported (F32, F16, BF16)");

            long[] shape = ReadLongs(path, name, t["shape"], "shape");
            long[] offsets = ReadLongs(path, name, t["data_offsets"], "data_offsets");
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[0] > offsets[1])
                throw new ModelFormatException(path, name, "data_offsets must be [begin, end] with 0 <= begin <= end");
            if (shape.Any(d => d < 0)) throw new ModelFormatException(path, name, "shape has a negative dimension");

            // Offsets and sizes come from the file: compare them with the bytes it holds before any arithmetic can overflow.
            long dataLength = fileLength - dataStart;
            if (offsets[1] > dataLength)
                throw new ModelFormatException(path, name,
                    $"data ends at byte {(Int128)dataStart + offsets[1]}, past the end of the file ({fileLength} bytes): the file is truncated");
            long bytes = offsets[1] - offsets[0];
            long needed = shape.Contains(0) ? 0 : dtype.Size();
            foreach (long d in needed == 0 ? [] : shape)
            {
                if (needed > dataLength / d)
                    throw new ModelFormatException(path, name,
                        $"shape [{string.Join(", ", shape)}] of {dtypeText} needs more bytes than the file's {dataLength} bytes of data");
                needed *= d;
            }
            if (bytes != needed)
                throw new ModelFormatException(path, name,
                    $"data_offsets cover {bytes} bytes but shape [{string.Join(", ", shape)}] of {dtypeText} needs {needed}");
            result[name] = new TensorInfo(name, dtype, shape, path, dataStart + offsets[0], bytes);
        }
        return result;
    }

    private static long[] ReadLongs(string path, string tensor, JsonNode? node, string field)
    {
        if (node is not JsonArray arr)
            throw new ModelFormatException(path, tensor, $"{field} is missing or not an array");
        var r = new long[arr.Count];
        for (int i = 0; i < r.Length; i++)
        {
            if (arr[i] is not JsonValue v || !v.TryGetValue(out long x))
                throw new ModelFormatException(path, tensor, $"{field}[{i}] is not an integer");
            r[i] = x;
        }
        return r;
    }

    /// <summary>The stored bytes of part of a tensor of this file, valid while the file is open.</summary>
    /// <param name="info">A tensor of this file.</param>
    /// <param name="start">Byte offset inside the tensor.</param>
    /// <param name="length">Bytes wanted (at most 2 GiB per call: read large tensors in chunks).</param>
    public ReadOnlySpan<byte> Bytes(TensorInfo info, long start, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (start < 0 || length < 0 || start + length > info.ByteLength)
            throw new ArgumentOutOfRangeException(nameof(length), $"byte range [{start}, {start + length}) is outside tensor {info.Name}");
        return new ReadOnlySpan<byte>(_base + info.Offset + start, length);
    }

    private bool _disposed;

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
