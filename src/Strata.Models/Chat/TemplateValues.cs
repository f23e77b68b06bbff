using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Strata.Models.Chat;

/// <summary>Python semantics for template values: truth, str(), repr(), equality, iteration and length.</summary>
internal static class TemplateValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        LoopInfo => "LoopContext",
        _ => "function",
    };

    /// <summary>Python's <c>str()</c>, which is what <c>{{ value }}</c> prints; undefined prints nothing.</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(value),
    };

    public static string Repr(object? value)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, value, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? value, int depth)
    {
        if (depth > 100) throw new TemplateRuntimeError("value nests too deeply to print", ChatTemplateErrorKind.LimitExceeded);
        switch (value)
        {
            case null: sb.Append("None"); break;
            case Undefined: break;
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FormatFloat(d)); break;
            case string s: AppendStringRepr(sb, s); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) sb.Append(", ");
                    AppendRepr(sb, list[i], depth + 1);
                }
                sb.Append(']');
                break;
            case OrderedDictionary<string, object?> dict:
                sb.Append('{');
                bool first = true;
                foreach (var (k, v) in dict)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendStringRepr(sb, k);
                    sb.Append(": ");
                    AppendRepr(sb, v, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace: sb.Append("<Namespace>"); break;
            default: sb.Append("<function>"); break;
        }
    }

    /// <summary>Python's repr of a str: single quotes unless the text has a single quote and no double one.</summary>
    private static void AppendStringRepr(StringBuilder sb, string s)
    {
        char quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        sb.Append(quote);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append(@"\\"); break;
                case '\n': sb.Append(@"\n"); break;
                case '\r': sb.Append(@"\r"); break;
                case '\t': sb.Append(@"\t"); break;
                case < ' ' or '\x7f': sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}"); break;
                default:
                    if (c == quote) sb.Append('\\');
                    sb.Append(c);
                    break;
            }
        }
        sb.Append(quote);
    }

    /// <summary>Python's float repr, near enough: shortest round-trip digits, a '.0' on whole numbers, 'e+NN' exponents.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        int at = r.IndexOf('E', StringComparison.Ordinal);
        if (at < 0) return r.Contains('.', StringComparison.Ordinal) ? r : r + ".0";
        int exponent = int.Parse(r.AsSpan(at + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture, $"{r[..at]}e{(exponent < 0 ? '-' : '+')}{Math.Abs(exponent):00}");
    }

    public static bool AreEqual(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (TryNumber(a, out double x) && TryNumber(b, out double y)) return x == y;
        return (a, b) switch
        {
            (null, null) => true,
            (string s, string t) => s == t,
            (List<object?> l, List<object?> m) => l.Count == m.Count && l.Zip(m).All(p => AreEqual(p.First, p.Second)),
            (OrderedDictionary<string, object?> d, OrderedDictionary<string, object?> e) =>
                d.Count == e.Count && d.All(kv => e.TryGetValue(kv.Key, out var v) && AreEqual(kv.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>bool, int and float compare as numbers, as in Python (True == 1).</summary>
    public static bool TryNumber(object? value, out double number)
    {
        switch (value)
        {
            case long l: number = l; return true;
            case double d: number = d; return true;
            case bool b: number = b ? 1 : 0; return true;
            default: number = 0; return false;
        }
    }

    /// <summary>What a for loop walks: list items, string characters, dict keys; undefined walks nothing.</summary>
    public static IReadOnlyList<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        string s => StringChars(s),
        OrderedDictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        Undefined => [],
        _ => throw new TemplateRuntimeError($"'{TypeName(value)}' object is not iterable"),
    };

    /// <summary>A string's characters, keeping surrogate pairs together as Python keeps code points.</summary>
    public static List<object?> StringChars(string s)
    {
        var chars = new List<object?>(s.Length);
        for (int i = 0; i < s.Length; i += char.IsSurrogatePair(s, i) ? 2 : 1)
            chars.Add(s.Substring(i, char.IsSurrogatePair(s, i) ? 2 : 1));
        return chars;
    }

    public static long Length(object? value) => value switch
    {
        string s => s.Length,
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        Undefined => 0,
        _ => throw new TemplateRuntimeError($"object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>Turns a caller's CLR value into a template value (JSON elements, dictionaries, sequences, numbers).</summary>
    public static object? FromClr(object? value, int depth = 0)
    {
        if (depth > 64) throw new TemplateRuntimeError("variable nests deeper than 64 levels", ChatTemplateErrorKind.LimitExceeded);
        switch (value)
        {
            case null or bool or long or double or string: return value;
            case int or short or byte or sbyte or ushort or uint: return Convert.ToInt64(value, CultureInfo.InvariantCulture);
            case ulong u: return u <= long.MaxValue ? (long)u : (double)u;
            case float or decimal: return Convert.ToDouble(value, CultureInfo.InvariantCulture);
            case JsonElement json: return FromJson(json, depth);
            case ChatMessage m: return MessageDict(m);
            case IEnumerable<KeyValuePair<string, object?>> pairs:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (k, v) in pairs) dict[k] = FromClr(v, depth + 1);
                return dict;
            case IDictionary map:
                var fromMap = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (DictionaryEntry e in map)
                    fromMap[e.Key as string ?? Convert.ToString(e.Key, CultureInfo.InvariantCulture) ?? ""] = FromClr(e.Value, depth + 1);
                return fromMap;
            case IEnumerable items:
                var list = new List<object?>();
                foreach (var item in items) list.Add(FromClr(item, depth + 1));
                return list;
            default:
                throw new TemplateRuntimeError($"a variable of type {value.GetType().Name} cannot be passed to a template");
        }
    }

    public static OrderedDictionary<string, object?> MessageDict(ChatMessage m) =>
        new(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content };

    private static object? FromJson(JsonElement json, int depth) => json.ValueKind switch
    {
        JsonValueKind.String => json.GetString(),
        JsonValueKind.Number => json.TryGetInt64(out long l) ? l : json.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => json.EnumerateArray().Select(e => FromClr(e, depth + 1)).ToList(),
        JsonValueKind.Object => json.EnumerateObject().Aggregate(
            new OrderedDictionary<string, object?>(StringComparer.Ordinal),
            (d, p) => { d[p.Name] = FromClr(p.Value, depth + 1); return d; }),
        _ => null,
    };
}
