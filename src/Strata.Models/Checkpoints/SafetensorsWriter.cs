using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;

namespace Strata.Models.Checkpoints;

/// <summary>Fills one chunk of a tensor's stored bytes.</summary>
/// <param name="byteOffset">Offset of <paramref name="destination"/> inside the tensor, in bytes (a multiple of the element size).</param>
/// <param name="destination">The bytes to fill, in the tensor's stored dtype, little-endian.</param>
public delegate void TensorByteFiller(long byteOffset, Span<byte> destination);

/// <summary>Fills one chunk of a tensor with float32 values, which the writer converts to the stored dtype.</summary>
/// <param name="elementOffset">Index of the first element of <paramref name="destination"/> inside the tensor.</param>
/// <param name="destination">The values to fill.</param>
public delegate void TensorFloatFiller(long elementOffset, Span<float> destination);

/// <summary>
/// Writes a <c>.safetensors</c> file: an 8-byte little-endian header length, a JSON header (padded with spaces so
/// the data starts 8-byte aligned), then each tensor's bytes in the order the tensors were added.
/// Tensors are described first and their bytes produced by callbacks while writing, chunk by chunk and in
/// ascending order, so a file of any size is written without holding it in memory.
/// </summary>
public sealed class SafetensorsWriter
{
    /// <summary>Bytes handed to a filler per call (at most).</summary>
    public const int ChunkBytes = 1 << 20;

    private readonly List<Entry> _entries = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, string>? _metadata;
    private long _dataBytes;

    /// <summary>Creates an empty writer.</summary>
    /// <param name="metadata">Optional string pairs stored under <c>__metadata__</c> (written in ordinal key order).</param>
    public SafetensorsWriter(IReadOnlyDictionary<string, string>? metadata = null) => _metadata = metadata;

    /// <summary>Bytes of tensor data added so far (excluding the header).</summary>
    public long DataBytes => _dataBytes;

    /// <summary>Number of tensors added.</summary>
    public int Count => _entries.Count;

    /// <summary>Adds a tensor whose stored bytes come from <paramref name="fill"/>.</summary>
    public void Add(string name, TensorDType dtype, long[] shape, TensorByteFiller fill)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(fill);
        if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved", nameof(name));
        if (!_names.Add(name)) throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(shape));
        long bytes = checked(shape.Aggregate(1L, (a, b) => checked(a * b)) * dtype.Size());
        _entries.Add(new Entry(name, dtype, (long[])shape.Clone(), _dataBytes, bytes, fill));
        _dataBytes += bytes;
    }

    /// <summary>Adds a tensor produced as float32 chunks and stored converted to <paramref name="dtype"/>.</summary>
    public void AddFloat32(string name, TensorDType dtype, long[] shape, TensorFloatFiller fill)
    {
        ArgumentNullException.ThrowIfNull(fill);
        int size = dtype.Size();
        Add(name, dtype, shape, (offset, dest) =>
        {
            int n = dest.Length / size;
            float[] buffer = ArrayPool<float>.Shared.Rent(n);
            try
            {
                var values = buffer.AsSpan(0, n);
                fill(offset / size, values);
                TensorDTypes.FromFloat32(dtype, values, dest);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(buffer);
            }
        });
    }

    /// <summary>Adds a tensor from values in memory, stored converted to <paramref name="dtype"/>.</summary>
    public void AddFloat32(string name, TensorDType dtype, long[] shape, float[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.LongLength != shape.Aggregate(1L, (a, b) => a * b))
            throw new ArgumentException($"tensor '{name}': {values.Length} values do not fill shape [{string.Join(", ", shape)}]", nameof(values));
        AddFloat32(name, dtype, shape, (offset, dest) => values.AsSpan((int)offset, dest.Length).CopyTo(dest));
    }

    /// <summary>Writes the file to <paramref name="path"/> (replacing it).</summary>
    /// <param name="path">Destination file.</param>
    /// <param name="written">Called after each chunk with the tensor name and the bytes just written.</param>
    public void Write(string path, Action<string, long>? written = null)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.SequentialScan);
        Write(stream, written);
    }

    /// <summary>Writes the file to <paramref name="stream"/>, from its current position.</summary>
    public void Write(Stream stream, Action<string, long>? written = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        byte[] header = BuildHeader();
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);

        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            foreach (var e in _entries)
            {
                // Chunks hold whole elements so fillers never see half an element.
                int chunk = ChunkBytes - ChunkBytes % e.DType.Size();
                for (long done = 0; done < e.ByteLength; done += chunk)
                {
                    int n = (int)Math.Min(chunk, e.ByteLength - done);
                    var span = buffer.AsSpan(0, n);
                    e.Fill(done, span);
                    stream.Write(span);
                    written?.Invoke(e.Name, n);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        stream.Flush();
    }

    private byte[] BuildHeader()
    {
        var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (_metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
            }
            foreach (var e in _entries)
            {
                w.WriteStartObject(e.Name);
                w.WriteString("dtype", e.DType.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (long d in e.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(e.Offset);
                w.WriteNumberValue(e.Offset + e.ByteLength);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // The format allows trailing spaces in the header; they align the data to 8 bytes.
        int padded = (int)((ms.Length + 7) / 8 * 8);
        while (ms.Length < padded) ms.WriteByte((byte)' ');
        return ms.ToArray();
    }

    private sealed record Entry(string Name, TensorDType DType, long[] Shape, long Offset, long ByteLength, TensorByteFiller Fill);
}
