using System.Text;
using System.Text.Json.Nodes;

namespace Strata.Fuzz.Tests;

/// <summary>
/// Structured mutations of a valid JSON document: a field replaced by a hostile value (wrong type, huge or
/// overflowing number, NaN, huge string, deep nesting), removed, duplicated or added; then, sometimes, the text
/// itself truncated or corrupted. Deterministic for a seed, so a failing case replays.
/// </summary>
internal static class JsonMutator
{
    /// <summary>Values that are not all valid JSON (NaN, Infinity) on purpose: they go in as raw text.</summary>
    private static readonly string[] Hostile =
    [
        "null", "true", "false", "0", "-0", "1", "-1", "2", "1.5", "-1.5", "1e308", "-1e308", "1e400", "-1e400", "1e-400",
        "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "18446744073709551615", "18446744073709551616", "123456789012345678901234567890",
        "NaN", "Infinity", "-Infinity",
        "\"\"", "\"x\"", "\"F32\"", "\"BF16\"", "\"fp16\"", "\"none\"", "\"int4\"", "\"../../etc/passwd\"", "\"/etc/passwd\"",
        "\"a\\\\b\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\u2581\"", "\"<s>\"", "\"Sequence\"", "\"BPE\"", "\"ByteLevel\"",
        "[]", "{}", "[null]", "[1]", "[-1]", "[0, 0]", "[-1, 0]", "[1, 0]", "[2147483648]",
        "[9223372036854775807, 9223372036854775807]", "[-9223372036854775808, 9223372036854775807]",
        "[4294967296, 4294967296]", "[65536, 65536, 65536, 65536]", "[\"a\"]", "[[1]]", "{\"a\": 1}", "{\"type\": \"Sequence\"}",
    ];

    // Larger inputs test the machine, not the parser.
    private const int MaxChars = 8_000_000;

    /// <summary>A mutated copy of <paramref name="valid"/> as UTF-8 bytes.</summary>
    public static byte[] Mutate(string valid, int seed)
    {
        var rng = new Random(seed);
        JsonNode? root = JsonNode.Parse(valid);
        var raw = new Dictionary<string, string>();
        int ops = rng.Next(1, 4);
        for (int i = 0; i < ops; i++) root = Apply(root, rng, raw);
        string text = root?.ToJsonString() ?? "null";
        foreach (var (marker, replacement) in raw)
        {
            text = text.Replace(marker, replacement, StringComparison.Ordinal);
            if (text.Length > MaxChars) text = text[..MaxChars]; // truncated: still a valid case, and a bounded one
        }
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return rng.Next(5) == 0 ? Corrupt(bytes, rng) : bytes;
    }

    /// <summary>A mutated copy as text (lossy where the corruption broke UTF-8).</summary>
    public static string MutateText(string valid, int seed) => Encoding.UTF8.GetString(Mutate(valid, seed));

    private static JsonNode? Apply(JsonNode? root, Random rng, Dictionary<string, string> raw)
    {
        var nodes = new List<(JsonNode? Parent, string? Key, int Index, JsonNode? Node)> { (null, null, -1, root) };
        Collect(root, nodes);
        var (parent, key, index, node) = nodes[rng.Next(nodes.Count)];
        JsonNode? replacement;
        switch (rng.Next(10))
        {
            case 0 when parent is not null: // remove
                if (parent is JsonObject po) po.Remove(key!);
                else ((JsonArray)parent).RemoveAt(index);
                return root;
            case 1 when node is JsonObject o: // duplicate one of its keys
                if (o.Count == 0) return root;
                string dupOf = o.ElementAt(rng.Next(o.Count)).Key;
                string marker = Marker(raw, System.Text.Json.JsonSerializer.Serialize(dupOf));
                o[marker.Trim('"')] = HostileNode(rng, raw);
                return root;
            case 2 when node is JsonObject o: // an extra field
                o["x" + rng.Next(100)] = HostileNode(rng, raw);
                return root;
            case 3 when node is JsonArray a: // more elements
                int copies = rng.Next(1, rng.Next(2) == 0 ? 4 : 2000);
                var item = a.Count > 0 ? a[rng.Next(a.Count)] : HostileNode(rng, raw);
                // Copies of copies grow fast: keep a document within a few MB (markers expand later, by up to 10 KB each).
                copies = Math.Min(copies, 2_000_000 / ((item?.ToJsonString().Length ?? 4) + 10_000) + 1);
                for (int i = 0; i < copies; i++) a.Add(item?.DeepClone());
                return root;
            case 4: // deep nesting
                int depth = new[] { 3, 31, 33, 63, 65, 200, 5000 }[rng.Next(7)];
                replacement = JsonValue.Create(Marker(raw, new string('[', depth) + "1" + new string(']', depth)).Trim('"'));
                break;
            case 5 when node is JsonValue v && v.TryGetValue(out double d): // a nearby or extreme number
                replacement = JsonValue.Create(Marker(raw, Nearby(d, rng)).Trim('"'));
                break;
            case 6: // a huge string
                replacement = JsonValue.Create(new string((char)rng.Next('a', 'z'), rng.Next(2) == 0 ? 70_000 : 1_100_000));
                break;
            default:
                replacement = HostileNode(rng, raw);
                break;
        }
        if (parent is null) return replacement;
        if (parent is JsonObject obj) obj[key!] = replacement;
        else ((JsonArray)parent)[index] = replacement;
        return root;
    }

    private static void Collect(JsonNode? node, List<(JsonNode?, string?, int, JsonNode?)> into)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o.ToList())
                {
                    into.Add((o, k, -1, v));
                    Collect(v, into);
                }
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++)
                {
                    into.Add((a, null, i, a[i]));
                    Collect(a[i], into);
                }
                break;
        }
    }

    private static JsonNode? HostileNode(Random rng, Dictionary<string, string> raw) =>
        JsonValue.Create(Marker(raw, Hostile[rng.Next(Hostile.Length)]).Trim('"'));

    // A string value that the final text swaps for raw JSON (which may be invalid JSON on purpose).
    private static string Marker(Dictionary<string, string> raw, string json)
    {
        string marker = $"\"@@{raw.Count}@@\"";
        raw[marker] = json;
        return marker;
    }

    private static string Nearby(double d, Random rng)
    {
        double[] candidates = [d + 1, d - 1, -d, d * 2, d * 1024, d * 65536 * 65536, d / 3, 0, d + 0.5];
        double pick = candidates[rng.Next(candidates.Length)];
        return double.IsFinite(pick) ? pick.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : "1e999";
    }

    /// <summary>Byte-level damage: truncation, deletion, insertion or flipped bits.</summary>
    public static byte[] Corrupt(byte[] bytes, Random rng)
    {
        var list = bytes.ToList();
        int edits = rng.Next(1, 4);
        for (int e = 0; e < edits && list.Count > 0; e++)
        {
            int at = rng.Next(list.Count);
            switch (rng.Next(4))
            {
                case 0: list.RemoveRange(at, list.Count - at); break;
                case 1: list.RemoveRange(at, Math.Min(list.Count - at, rng.Next(1, 16))); break;
                case 2: list.Insert(at, (byte)rng.Next(256)); break;
                default: list[at] ^= (byte)(1 << rng.Next(8)); break;
            }
        }
        return [.. list];
    }
}
