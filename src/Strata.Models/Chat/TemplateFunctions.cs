using System.Globalization;
using System.Text;

namespace Strata.Models.Chat;

/// <summary>Methods on values (<c>content.strip()</c>, <c>tool.items()</c>, <c>loop.cycle(...)</c>) and global functions.</summary>
internal static class TemplateFunctions
{
    /// <summary>The longest list <c>range()</c> builds; loops over more are not prompt formatting.</summary>
    private const long MaxRange = 100_000;

    public static readonly IReadOnlyList<string> Globals = ["raise_exception", "namespace", "range", "strftime_now", "dict"];

    public static object? CallMethod(BoundMethod method, ArgValues args, int maxLength) => method.Receiver switch
    {
        string s => StringMethod(s, method.Name, args, maxLength),
        OrderedDictionary<string, object?> dict => DictMethod(dict, method.Name, args),
        LoopInfo loop when args.Positional.Count > 0 => args.Positional[loop.Index0 % args.Positional.Count],
        LoopInfo => throw new TemplateRuntimeError("loop.cycle() needs at least one value"),
        _ => throw new TemplateRuntimeError($"'{method.Name}' cannot be called"),
    };

    private static object? StringMethod(string s, string name, ArgValues args, int maxLength)
    {
        object? a0 = args.Get(0, "chars");
        switch (name)
        {
            case "strip": return a0 is string c ? s.Trim(c.ToCharArray()) : s.Trim();
            case "lstrip": return a0 is string l ? s.TrimStart(l.ToCharArray()) : s.TrimStart();
            case "rstrip": return a0 is string r ? s.TrimEnd(r.ToCharArray()) : s.TrimEnd();
            case "upper": return s.ToUpperInvariant();
            case "lower": return s.ToLowerInvariant();
            case "capitalize": return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
            case "title": return PythonTitle(s);
            case "startswith" or "endswith": return Affix(s, name == "startswith", args.Get(0, "prefix"));
            case "split": return Split(s, args.Get(0, "sep"), args.Get(1, "maxsplit", -1L) is long m ? m : -1);
            case "replace":
                return Replace(s, TemplateFilters.Str(args.Get(0, "old"), "replace"), TemplateFilters.Str(args.Get(1, "new"), "replace"),
                    args.Get(2, "count", -1L) is long n ? n : -1, maxLength);
            default: throw new TemplateRuntimeError($"str.{name}() is not supported");
        }
    }

    private static object? DictMethod(OrderedDictionary<string, object?> dict, string name, ArgValues args) => name switch
    {
        "items" => dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
        "keys" => dict.Keys.Cast<object?>().ToList(),
        "values" => dict.Values.ToList(),
        "get" => args.Get(0, "key") is string k && dict.TryGetValue(k, out var v) ? v : args.Get(1, "default"),
        _ => throw new TemplateRuntimeError($"dict.{name}() is not supported"),
    };

    private static bool Affix(string s, bool start, object? affix) => affix switch
    {
        string a => start ? s.StartsWith(a, StringComparison.Ordinal) : s.EndsWith(a, StringComparison.Ordinal),
        List<object?> options => options.Any(o => Affix(s, start, o)),
        _ => throw new TemplateRuntimeError($"{(start ? "startswith" : "endswith")} needs a string or a tuple of strings"),
    };

    /// <summary>Python's str.title(): a letter after a non-letter is upper case, other letters lower case.</summary>
    private static string PythonTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (char c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>Python's str.split: no separator splits on runs of whitespace and drops empty ends.</summary>
    private static List<object?> Split(string s, object? sep, long maxSplit)
    {
        if (sep is string separator)
        {
            if (separator.Length == 0) throw new TemplateRuntimeError("empty separator");
            int count = maxSplit < 0 ? int.MaxValue : (int)Math.Min(maxSplit + 1, int.MaxValue);
            return s.Split(separator, count).Cast<object?>().ToList();
        }
        if (sep is not null) throw new TemplateRuntimeError("split() separator must be a string or None");
        var parts = new List<object?>();
        int i = 0;
        while (true)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
            if (i >= s.Length) break;
            if (maxSplit >= 0 && parts.Count == maxSplit)
            {
                parts.Add(s[i..].TrimEnd());
                break;
            }
            int start = i;
            while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
            parts.Add(s[start..i]);
        }
        return parts;
    }

    public static string Replace(string s, string old, string replacement, long count, int maxLength)
    {
        if (count < 0 && old.Length > 0)
        {
            long grown = s.Length + ((long)(replacement.Length - old.Length) * CountOf(s, old));
            TemplateOperators.CheckSize(grown, maxLength);
            return s.Replace(old, replacement, StringComparison.Ordinal);
        }
        var sb = new StringBuilder();
        int pos = 0;
        for (long done = 0; count < 0 || done < count; done++)
        {
            int at = old.Length == 0 ? (pos <= s.Length ? pos : -1) : s.IndexOf(old, pos, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, pos, at - pos).Append(replacement);
            if (old.Length == 0)
            {
                if (at < s.Length) sb.Append(s[at]);
                pos = at + 1;
            }
            else pos = at + old.Length;
            TemplateOperators.CheckSize(sb.Length, maxLength);
        }
        if (pos < s.Length) sb.Append(s, pos, s.Length - pos);
        return sb.ToString();
    }

    private static long CountOf(string s, string part)
    {
        long n = 0;
        for (int at = s.IndexOf(part, StringComparison.Ordinal); at >= 0; at = s.IndexOf(part, at + part.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    public static object? CallGlobal(string name, ArgValues args, TimeProvider time) => name switch
    {
        "raise_exception" => throw new TemplateRuntimeError(
            TemplateValues.ToStr(args.Get(0, "message", "the chat template raised an error")), ChatTemplateErrorKind.Rejected),
        "namespace" => NewNamespace(args),
        "dict" => args.Named.Aggregate(
            new OrderedDictionary<string, object?>(StringComparer.Ordinal), (d, kv) => { d[kv.Key] = kv.Value; return d; }),
        "range" => Range(args),
        "strftime_now" => Strftime(time.GetLocalNow(), TemplateFilters.Str(args.Get(0, "format"), "strftime_now")),
        _ => throw new TemplateRuntimeError($"'{name}' is undefined"),
    };

    private static Namespace NewNamespace(ArgValues args)
    {
        var ns = new Namespace();
        if (args.Positional.Count > 0 && args.Positional[0] is OrderedDictionary<string, object?> initial)
            foreach (var (k, v) in initial) ns.Attributes[k] = v;
        foreach (var (k, v) in args.Named) ns.Attributes[k] = v;
        return ns;
    }

    private static List<object?> Range(ArgValues args)
    {
        var n = args.Positional.Select(a => a is long l ? l : throw new TemplateRuntimeError("range() takes integers")).ToList();
        if (n.Count is 0 or > 3) throw new TemplateRuntimeError("range() takes 1 to 3 integers");
        long start = n.Count == 1 ? 0 : n[0], stop = n.Count == 1 ? n[0] : n[1], step = n.Count == 3 ? n[2] : 1;
        if (step == 0) throw new TemplateRuntimeError("range() step must not be zero");
        double length = Math.Max(0, Math.Ceiling(((double)stop - start) / step));
        if (length > MaxRange)
            throw new TemplateRuntimeError($"range() of {length} items is over the limit of {MaxRange}", ChatTemplateErrorKind.LimitExceeded);
        var items = new List<object?>((int)length);
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) items.Add(i);
        return items;
    }

    /// <summary>C's strftime for the specifiers templates use (Llama 3.2 asks for <c>%d %b %Y</c>), in English.</summary>
    public static string Strftime(DateTimeOffset t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char f = format[++i];
            bool noPad = f == '-' && i + 1 < format.Length;
            if (noPad) f = format[++i];
            string Num(int value, int width) => noPad ? value.ToString(inv) : value.ToString(new string('0', width), inv);
            sb.Append(f switch
            {
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'b' or 'h' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'd' => Num(t.Day, 2),
                'e' => t.Day.ToString(inv).PadLeft(2),
                'm' => Num(t.Month, 2),
                'y' => Num(t.Year % 100, 2),
                'Y' => t.Year.ToString(inv),
                'H' => Num(t.Hour, 2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => Num(t.DayOfYear, 3),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", inv),
                'z' => t.ToString("zzz", inv).Replace(":", "", StringComparison.Ordinal),
                'F' => t.ToString("yyyy-MM-dd", inv),
                'T' => t.ToString("HH:mm:ss", inv),
                '%' => "%",
                _ => "%" + (noPad ? "-" : "") + f,
            });
        }
        return sb.ToString();
    }
}
