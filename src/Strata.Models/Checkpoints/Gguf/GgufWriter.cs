using System.Buffers.Binary;
using System.Text;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// Writes a GGUF file (version 3, little-endian, data aligned to 32 bytes as llama.cpp writes it): metadata, then
/// tensor infos, then each tensor's data padded to the alignment. Tensor data is produced when the file is written,
/// one tensor at a time.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<(string Key, GgufValue Value)> _metadata = [];
    private readonly List<(string Name, GgmlType Type, long[] Dims, Func<byte[]> Data)> _tensors = [];

    /// <summary>Alignment of tensor data (<c>general.alignment</c> is written when it is not the default).</summary>
    public int Alignment { get; init; } = GgufFile.DefaultAlignment;

    /// <summary>Adds a metadata value.</summary>
    public GgufWriter Add(string key, GgufValue value)
    {
        if (_metadata.Any(m => m.Key == key)) throw new ArgumentException($"metadata key {key} was already added");
        _metadata.Add((key, value));
        return this;
    }

    /// <summary>Adds a string.</summary>
    public GgufWriter Add(string key, string value) => Add(key, GgufValue.Of(GgufValueType.String, value));
    /// <summary>Adds a uint32.</summary>
    public GgufWriter Add(string key, uint value) => Add(key, GgufValue.Of(GgufValueType.UInt32, value));
    /// <summary>Adds a float32.</summary>
    public GgufWriter Add(string key, float value) => Add(key, GgufValue.Of(GgufValueType.Float32, value));
    /// <summary>Adds a bool.</summary>
    public GgufWriter Add(string key, bool value) => Add(key, GgufValue.Of(GgufValueType.Bool, value));
    /// <summary>Adds an array of strings.</summary>
    public GgufWriter Add(string key, string[] values) => Add(key, GgufValue.ArrayOf(GgufValueType.String, values));
    /// <summary>Adds an array of float32.</summary>
    public GgufWriter Add(string key, float[] values) => Add(key, GgufValue.ArrayOf(GgufValueType.Float32, values));
    /// <summary>Adds an array of int32.</summary>
    public GgufWriter Add(string key, int[] values) => Add(key, GgufValue.ArrayOf(GgufValueType.Int32, values));

    /// <summary>Adds a tensor whose encoded bytes <paramref name="data"/> produces when the file is written.</summary>
    /// <param name="name">llama.cpp name.</param>
    /// <param name="type">Element type of the bytes.</param>
    /// <param name="shape">Shape outermost first (Hugging Face's order); written reversed, as ggml orders dimensions.</param>
    /// <param name="data">The encoded bytes (<see cref="GgmlEncoder.Encode"/>).</param>
    public GgufWriter AddTensor(string name, GgmlType type, long[] shape, Func<byte[]> data)
    {
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"tensor {name} was already added");
        if (shape.Length is < 1 or > GgufFile.MaxDims || shape[^1] % type.BlockElements() != 0)
            throw new ArgumentException($"tensor {name}: shape [{string.Join(", ", shape)}] cannot be stored as {type}");
        _tensors.Add((name, type, shape.Reverse().ToArray(), data));
        return this;
    }

    /// <summary>Adds a float tensor encoded as <paramref name="type"/>.</summary>
    public GgufWriter AddTensor(string name, GgmlType type, long[] shape, float[] values) =>
        AddTensor(name, type, shape, () => GgmlEncoder.Encode(type, values));

    /// <summary>Writes the file.</summary>
    public void Write(string path)
    {
        var metadata = _metadata.ToList();
        if (Alignment != GgufFile.DefaultAlignment && !metadata.Any(m => m.Key == "general.alignment"))
            metadata.Add(("general.alignment", GgufValue.Of(GgufValueType.UInt32, (uint)Alignment)));
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var w = new BinaryWriter(stream, Encoding.UTF8);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)metadata.Count);
        foreach (var (key, value) in metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }
        long offset = 0;
        foreach (var (name, type, dims, _) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dims.Length);
            foreach (long d in dims) w.Write((ulong)d);
            w.Write((uint)type);
            w.Write((ulong)offset);
            long bytes = type.RowBytes(dims[0]) * dims.Skip(1).Aggregate(1L, (a, b) => a * b);
            offset += Pad(bytes);
        }
        w.Flush();
        WritePadding(stream);
        foreach (var (name, type, dims, data) in _tensors)
        {
            byte[] bytes = data();
            long expected = type.RowBytes(dims[0]) * dims.Skip(1).Aggregate(1L, (a, b) => a * b);
            if (bytes.LongLength != expected)
                throw new ArgumentException($"tensor {name}: {bytes.LongLength} bytes of data, but its shape and type need {expected}");
            stream.Write(bytes);
            WritePadding(stream);
        }
    }

    private long Pad(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private void WritePadding(Stream s)
    {
        long pad = Pad(s.Position) - s.Position;
        for (long i = 0; i < pad; i++) s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        if (v.Type == GgufValueType.Array)
        {
            var items = (Array)v.Value;
            w.Write((uint)v.ElementType);
            w.Write((ulong)items.Length);
            foreach (object? item in items)
            {
                if (v.ElementType == GgufValueType.Array) WriteValue(w, (GgufValue)item!);
                else WriteScalar(w, v.ElementType, item!);
            }
            return;
        }
        WriteScalar(w, v.Type, v.Value);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object value)
    {
        Span<byte> b = stackalloc byte[8];
        switch (type)
        {
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt8: w.Write(Convert.ToByte(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int8: w.Write(Convert.ToSByte(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.UInt16: w.Write(Convert.ToUInt16(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int16: w.Write(Convert.ToInt16(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.UInt32: w.Write(Convert.ToUInt32(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int32: w.Write(Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.UInt64: w.Write(Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Int64: w.Write(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.Float32:
                BinaryPrimitives.WriteSingleLittleEndian(b, Convert.ToSingle(value, System.Globalization.CultureInfo.InvariantCulture));
                w.Write(b[..4]);
                break;
            case GgufValueType.Float64:
                BinaryPrimitives.WriteDoubleLittleEndian(b, Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
                w.Write(b);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }
}
