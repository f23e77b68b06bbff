using System.Buffers.Binary;
using System.Text;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>Parses and validates a GGUF header from mapped bytes; every read is bounds-checked.</summary>
internal sealed unsafe class GgufHeaderReader(string path, byte* data, long length)
{
    // The smallest encodings: a key/value is a string length, a type and one byte; a tensor info a name length,
    // a dimension count, one dimension, a type and an offset. Counts larger than the file could hold are refused.
    private const int MinKeyValueBytes = 8 + 4 + 1;
    private const int MinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
    private const int MaxKeyBytes = 65_535;
    private const int MaxArrayDepth = 2;

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private long _pos;

    public sealed record Header(int Version, Dictionary<string, GgufValue> Metadata, Dictionary<string, GgufTensor> Tensors, long DataStart, int Alignment);

    public Header Read()
    {
        uint magic = U32(null, "magic");
        if (magic != GgufFile.Magic)
            throw Error(null, $"bad magic 0x{magic:X8} (expected \"GGUF\"): this is not a GGUF file");
        uint version = U32(null, "version");
        if (version is not (2 or 3))
        {
            string why = version == 1 ? "GGUF version 1 (32-bit counts) is not supported"
                : BinaryPrimitives.ReverseEndianness(version) is 2 or 3 ? "this is a big-endian GGUF file, which is not supported"
                : $"GGUF version {version} is not supported";
            throw Error("version", why + " (versions 2 and 3 are)");
        }
        ulong tensorCount = U64(null, "tensor count");
        ulong kvCount = U64(null, "metadata count");
        if (kvCount > (ulong)(Remaining / MinKeyValueBytes))
            throw Error(null, $"metadata count {kvCount} is more than the file's {length} bytes could hold: the file is corrupt");
        if (tensorCount > (ulong)(Remaining / MinTensorInfoBytes))
            throw Error(null, $"tensor count {tensorCount} is more than the file's {length} bytes could hold: the file is corrupt");

        var metadata = new Dictionary<string, GgufValue>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = String(null, $"metadata key {i}", MaxKeyBytes);
            var type = ValueType(key, U32(key, "value type"));
            var value = Value(key, type, 0);
            if (!metadata.TryAdd(key, value)) throw Error(key, "the key appears twice in the metadata");
        }

        int alignment = GgufFile.DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out var a))
        {
            if (a.Type != GgufValueType.UInt32 || a.Value is not uint al || al == 0 || (al & (al - 1)) != 0 || al > 1 << 20)
                throw Error("general.alignment", $"expected a power of two UInt32 up to 1 MiB, got {a.TypeName} {a.Value}");
            alignment = (int)al;
        }

        var infos = new List<(string Name, uint Type, long[] Dims, ulong Offset)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = String(null, $"tensor info {i} name", MaxKeyBytes);
            if (!names.Add(name)) throw Error(name, "the tensor appears twice in the header");
            uint nDims = U32(name, "dimension count");
            if (nDims is < 1 or > GgufFile.MaxDims)
                throw Error(name, $"{nDims} dimensions (a ggml tensor has 1 to {GgufFile.MaxDims})");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong n = U64(name, "dimension");
                if (n is 0 or > long.MaxValue) throw Error(name, $"dimension {d} is {n}");
                dims[d] = (long)n;
            }
            infos.Add((name, U32(name, "type"), dims, U64(name, "offset")));
        }

        long dataStart = AlignUp(_pos, alignment);
        if (dataStart > length)
            throw Error(null, $"the header ends at byte {_pos} but the file has only {length} bytes: the file is truncated");
        var tensors = new Dictionary<string, GgufTensor>(StringComparer.Ordinal);
        foreach (var (name, rawType, dims, offset) in infos)
            tensors[name] = Tensor(name, rawType, dims, offset, dataStart, alignment);
        CheckNoOverlap(tensors.Values);
        return new Header((int)version, metadata, tensors, dataStart, alignment);
    }

    private GgufTensor Tensor(string name, uint rawType, long[] dims, ulong offset, long dataStart, int alignment)
    {
        if (!GgmlTypes.IsSupported(rawType))
            throw Error(name, $"tensor type {GgmlTypes.NameOf(rawType)} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)");
        var type = (GgmlType)rawType;
        if (dims[0] % type.BlockElements() != 0)
            throw Error(name, $"the row length {dims[0]} is not a multiple of {type}'s block of {type.BlockElements()} values");
        long dataLength = length - dataStart;
        // Sizes come from the file: compare them with the bytes it holds before any arithmetic can overflow.
        Int128 bytes = (Int128)(dims[0] / type.BlockElements()) * type.BlockBytes();
        for (int d = 0; d < dims.Length; d++)
        {
            if (d > 0) bytes *= dims[d];
            if (bytes > dataLength)
                throw Error(name, $"shape [{string.Join(", ", dims.Reverse())}] of {type} needs more bytes than the file's {dataLength} bytes of data");
        }
        if (offset % (ulong)alignment != 0)
            throw Error(name, $"data offset {offset} is not a multiple of the file's alignment {alignment}: the file is corrupt");
        if ((Int128)offset + bytes > dataLength)
            throw Error(name, $"data [{offset}, {(Int128)offset + bytes}) runs past the end of the data section ({dataLength} bytes): the file is truncated");
        return new GgufTensor(name, type, dims, dataStart + (long)offset, (long)bytes);
    }

    private void CheckNoOverlap(IEnumerable<GgufTensor> tensors)
    {
        GgufTensor? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Offset))
        {
            if (previous is not null && t.Offset < previous.Offset + previous.ByteLength)
                throw Error(t.Name, $"its data overlaps tensor {previous.Name}'s: the file is corrupt");
            previous = t;
        }
    }

    private static long AlignUp(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    private long Remaining => length - _pos;

    private GgufValueType ValueType(string key, uint raw) =>
        raw <= (uint)GgufValueType.Float64 ? (GgufValueType)raw : throw Error(key, $"unknown metadata value type {raw}");

    private GgufValue Value(string key, GgufValueType type, int depth)
    {
        switch (type)
        {
            case GgufValueType.String: return GgufValue.Of(type, String(key, "value", int.MaxValue));
            case GgufValueType.Array: return ArrayValue(key, depth);
            default: return GgufValue.Of(type, Scalar(key, type));
        }
    }

    private GgufValue ArrayValue(string key, int depth)
    {
        if (depth >= MaxArrayDepth) throw Error(key, $"arrays nested more than {MaxArrayDepth} deep are not supported");
        var elementType = ValueType(key, U32(key, "array element type"));
        ulong count = U64(key, "array length");
        int minBytes = elementType switch
        {
            GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => ScalarSize(elementType),
        };
        if (count > (ulong)(Remaining / minBytes))
            throw Error(key, $"array length {count} of {elementType} needs more bytes than the {Remaining} left in the file: the file is truncated or corrupt");
        int n = (int)count;
        switch (elementType)
        {
            case GgufValueType.String:
                var strings = new string[n];
                for (int i = 0; i < n; i++) strings[i] = String(key, $"element {i}", int.MaxValue);
                return GgufValue.ArrayOf(elementType, strings);
            case GgufValueType.Array:
                var arrays = new GgufValue[n];
                for (int i = 0; i < n; i++) arrays[i] = ArrayValue(key, depth + 1);
                return GgufValue.ArrayOf(elementType, arrays);
            default:
                var values = Array.CreateInstance(ClrType(elementType), n);
                for (int i = 0; i < n; i++) values.SetValue(Scalar(key, elementType), i);
                return GgufValue.ArrayOf(elementType, values);
        }
    }

    private static int ScalarSize(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        _ => 8,
    };

    private static Type ClrType(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => typeof(byte), GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort), GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint), GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float), GgufValueType.Bool => typeof(bool),
        GgufValueType.UInt64 => typeof(ulong), GgufValueType.Int64 => typeof(long),
        _ => typeof(double),
    };

    private object Scalar(string key, GgufValueType t)
    {
        var b = Take(key, "value", ScalarSize(t));
        return t switch
        {
            GgufValueType.UInt8 => b[0],
            GgufValueType.Int8 => (sbyte)b[0],
            GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
            GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
            GgufValueType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
            GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
            GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(b),
            GgufValueType.Bool => b[0] switch
            {
                0 => false,
                1 => true,
                _ => throw Error(key, $"bool value {b[0]} is neither 0 nor 1"),
            },
            GgufValueType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
            GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
            _ => BinaryPrimitives.ReadDoubleLittleEndian(b),
        };
    }

    private string String(string? item, string what, int maxBytes)
    {
        ulong n = U64(item, what + " length");
        if (n > (ulong)Remaining)
            throw Error(item, $"{what}: string length {n} runs past the end of the file ({length} bytes): the file is truncated or corrupt");
        if (n > (ulong)maxBytes) throw Error(item, $"{what}: string length {n} exceeds {maxBytes} bytes");
        var bytes = Take(item, what, (int)n);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ModelFormatException(path, item, $"{what} is not valid UTF-8", e);
        }
    }

    private uint U32(string? item, string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(item, what, 4));

    private ulong U64(string? item, string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(item, what, 8));

    private ReadOnlySpan<byte> Take(string? item, string what, int n)
    {
        if (n > Remaining)
            throw Error(item, $"truncated header: {what} at byte {_pos} needs {n} bytes but the file has {length}");
        var span = new ReadOnlySpan<byte>(data + _pos, n);
        _pos += n;
        return span;
    }

    private ModelFormatException Error(string? item, string problem) => new(path, item, problem);
}
