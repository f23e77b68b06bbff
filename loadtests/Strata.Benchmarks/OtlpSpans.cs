using System.Buffers.Binary;
using System.Text;

namespace Strata.Benchmarks;

/// <summary>One span as an OTLP exporter sent it: ids, name, times (Unix ns) and the attributes the benchmarks read.</summary>
internal sealed record OtlpSpan(string TraceId, string SpanId, string ParentId, string Name, ulong StartNs, ulong EndNs,
    IReadOnlyDictionary<string, object> Attributes)
{
    public double DurationMs => (EndNs - StartNs) / 1e6;

    public double Number(string key) => Attributes.TryGetValue(key, out var v) ? Convert.ToDouble(v, System.Globalization.CultureInfo.InvariantCulture) : double.NaN;
}

/// <summary>
/// Reads the spans out of an OTLP/HTTP trace export (<c>ExportTraceServiceRequest</c>, protobuf) with a small
/// wire-format reader: resource_spans(1) > scope_spans(2) > spans(2); span fields trace_id(1), span_id(2),
/// parent_span_id(4), name(5), start(7) and end(8) time, attributes(9) as key(1) / AnyValue(2) with string(1),
/// bool(2), int(3) or double(4). Everything else is skipped.
/// </summary>
internal static class OtlpSpans
{
    public static List<OtlpSpan> Read(byte[] request)
    {
        var spans = new List<OtlpSpan>();
        foreach (var resourceSpans in Fields(request).Where(f => f.Number == 1))
            foreach (var scopeSpans in Fields(resourceSpans.Bytes).Where(f => f.Number == 2))
                foreach (var span in Fields(scopeSpans.Bytes).Where(f => f.Number == 2))
                    spans.Add(Span(span.Bytes));
        return spans;
    }

    private static OtlpSpan Span(ReadOnlyMemory<byte> data)
    {
        string trace = "", id = "", parent = "", name = "";
        ulong start = 0, end = 0;
        var attributes = new Dictionary<string, object>(StringComparer.Ordinal);
        foreach (var f in Fields(data))
        {
            switch (f.Number)
            {
                case 1: trace = Convert.ToHexString(f.Bytes.Span); break;
                case 2: id = Convert.ToHexString(f.Bytes.Span); break;
                case 4: parent = Convert.ToHexString(f.Bytes.Span); break;
                case 5: name = Encoding.UTF8.GetString(f.Bytes.Span); break;
                case 7: start = f.Scalar; break;
                case 8: end = f.Scalar; break;
                case 9 when Attribute(f.Bytes) is { } kv: attributes[kv.Key] = kv.Value; break;
            }
        }
        return new OtlpSpan(trace, id, parent, name, start, end, attributes);
    }

    private static KeyValuePair<string, object>? Attribute(ReadOnlyMemory<byte> data)
    {
        string? key = null;
        object? value = null;
        foreach (var f in Fields(data))
        {
            if (f.Number == 1) key = Encoding.UTF8.GetString(f.Bytes.Span);
            else if (f.Number == 2) value = AnyValue(f.Bytes);
        }
        return key is null || value is null ? null : new(key, value);
    }

    /// <summary>string(1), bool(2), int(3) or double(4); arrays, maps and bytes are not read here.</summary>
    private static object? AnyValue(ReadOnlyMemory<byte> data) => Fields(data).Select(f => (f.Number, f.Wire) switch
    {
        (1, 2) => (object?)Encoding.UTF8.GetString(f.Bytes.Span),
        (2, 0) => f.Scalar != 0,
        (3, 0) => (long)f.Scalar,
        (4, 1) => BitConverter.Int64BitsToDouble((long)f.Scalar),
        _ => null,
    }).FirstOrDefault(v => v is not null);

    /// <summary>One field of a message: its number, wire type, and its value: <see cref="Scalar"/> for varint and
    /// fixed types, <see cref="Bytes"/> for length-delimited ones.</summary>
    private readonly record struct Field(int Number, int Wire, ulong Scalar, ReadOnlyMemory<byte> Bytes);

    /// <summary>The fields of a message in order.</summary>
    private static List<Field> Fields(ReadOnlyMemory<byte> data)
    {
        var fields = new List<Field>();
        var span = data.Span;
        int at = 0;
        while (at < span.Length)
        {
            ulong tag = Varint(span, ref at);
            int number = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (wire)
            {
                case 0: fields.Add(new(number, wire, Varint(span, ref at), default)); break;
                case 1: fields.Add(new(number, wire, BinaryPrimitives.ReadUInt64LittleEndian(span[at..]), default)); at += 8; break;
                case 2:
                    int length = (int)Varint(span, ref at);
                    fields.Add(new(number, wire, 0, data.Slice(at, length)));
                    at += length;
                    break;
                case 5: fields.Add(new(number, wire, BinaryPrimitives.ReadUInt32LittleEndian(span[at..]), default)); at += 4; break;
                default: throw new FormatException($"OTLP message: unsupported wire type {wire}");
            }
        }
        return fields;
    }

    private static ulong Varint(ReadOnlySpan<byte> span, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = span[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new FormatException("OTLP message: varint longer than 10 bytes");
    }
}
