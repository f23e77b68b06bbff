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
    public static List<OtlpSpan> Read(ReadOnlySpan<byte> request)
    {
        var spans = new List<OtlpSpan>();
        foreach (var (field, resourceSpans) in Fields(request))
            if (field == 1)
                foreach (var (f2, scopeSpans) in Fields(resourceSpans))
                    if (f2 == 2)
                        foreach (var (f3, span) in Fields(scopeSpans))
                            if (f3 == 2) spans.Add(Span(span));
        return spans;
    }

    private static OtlpSpan Span(ReadOnlyMemory<byte> data)
    {
        string trace = "", id = "", parent = "", name = "";
        ulong start = 0, end = 0;
        var attributes = new Dictionary<string, object>(StringComparer.Ordinal);
        var span = data.Span;
        int at = 0;
        while (at < span.Length)
        {
            ulong tag = Varint(span, ref at);
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (wire)
            {
                case 0: Varint(span, ref at); break;
                case 1:
                    ulong fixed64 = BinaryPrimitives.ReadUInt64LittleEndian(span[at..]);
                    at += 8;
                    if (field == 7) start = fixed64;
                    else if (field == 8) end = fixed64;
                    break;
                case 2:
                    int length = (int)Varint(span, ref at);
                    var bytes = data.Slice(at, length);
                    at += length;
                    switch (field)
                    {
                        case 1: trace = Convert.ToHexString(bytes.Span); break;
                        case 2: id = Convert.ToHexString(bytes.Span); break;
                        case 4: parent = Convert.ToHexString(bytes.Span); break;
                        case 5: name = Encoding.UTF8.GetString(bytes.Span); break;
                        case 9:
                            if (Attribute(bytes) is { } kv) attributes[kv.Key] = kv.Value;
                            break;
                    }
                    break;
                case 5: at += 4; break;
                default: throw new FormatException($"OTLP span: unsupported wire type {wire}");
            }
        }
        return new OtlpSpan(trace, id, parent, name, start, end, attributes);
    }

    private static KeyValuePair<string, object>? Attribute(ReadOnlyMemory<byte> data)
    {
        string? key = null;
        object? value = null;
        foreach (var (field, bytes) in Fields(data))
        {
            if (field == 1) key = Encoding.UTF8.GetString(bytes.Span);
            else if (field == 2) value = AnyValue(bytes.Span);
        }
        return key is null || value is null ? null : new(key, value);
    }

    private static object? AnyValue(ReadOnlySpan<byte> span)
    {
        int at = 0;
        while (at < span.Length)
        {
            ulong tag = Varint(span, ref at);
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (field, wire)
            {
                case (1, 2):
                    int length = (int)Varint(span, ref at);
                    return Encoding.UTF8.GetString(span.Slice(at, length));
                case (2, 0): return Varint(span, ref at) != 0;
                case (3, 0): return (long)Varint(span, ref at);
                case (4, 1): return BitConverter.Int64BitsToDouble((long)BinaryPrimitives.ReadUInt64LittleEndian(span[at..]));
                default: return null; // arrays, maps and bytes: not read here
            }
        }
        return null;
    }

    /// <summary>The length-delimited fields of a message, each with its number; other wire types are skipped.</summary>
    private static List<(int Field, ReadOnlyMemory<byte> Bytes)> Fields(ReadOnlyMemory<byte> data)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        var span = data.Span;
        int at = 0;
        while (at < span.Length)
        {
            ulong tag = Varint(span, ref at);
            int field = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (wire)
            {
                case 0: Varint(span, ref at); break;
                case 1: at += 8; break;
                case 2:
                    int length = (int)Varint(span, ref at);
                    fields.Add((field, data.Slice(at, length)));
                    at += length;
                    break;
                case 5: at += 4; break;
                default: throw new FormatException($"OTLP message: unsupported wire type {wire}");
            }
        }
        return fields;
    }

    private static List<(int Field, ReadOnlyMemory<byte> Bytes)> Fields(ReadOnlySpan<byte> data) => Fields(data.ToArray().AsMemory());

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
