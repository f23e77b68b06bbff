using System.Collections.Frozen;
namespace Strata.Models.Chat;

/// <summary>Operators, member access and slicing with Python's rules; sizes are checked against the output bound.</summary>
internal static class TemplateOperators
{
    private static readonly FrozenSet<string> StringMethods = new[]
    {
        "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "title", "upper", "lower", "capitalize", "replace",
    }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> DictMethods =
        new[] { "items", "keys", "values", "get" }.ToFrozenSet(StringComparer.Ordinal);

    public static object? Binary(string op, object? a, object? b, int maxLength)
    {
        if (op is "~") return Checked(TemplateValues.ToStr(a) + TemplateValues.ToStr(b), maxLength);
        if (op is "==") return TemplateValues.AreEqual(a, b);
        if (op is "!=") return !TemplateValues.AreEqual(a, b);
        if (op is "in") return Contains(b, a);
        if (op is "not in") return !Contains(b, a);
        FailIfUndefined(a);
        FailIfUndefined(b);
        if (op is "<" or "<=" or ">" or ">=") return CompareOp(op, a, b);
        try
        {
            return Arithmetic(op, a, b, maxLength);
        }
        catch (OverflowException)
        {
            throw new TemplateRuntimeError($"integer overflow in '{op}'");
        }
    }

    private static object? Arithmetic(string op, object? a, object? b, int maxLength)
    {
        switch (op, a, b)
        {
            case ("+", string s, string t): return Checked(s + t, maxLength);
            case ("+", List<object?> l, List<object?> m):
                CheckSize((long)l.Count + m.Count, maxLength);
                return l.Concat(m).ToList();
            case ("*", string s, long n): return Repeat(s, n, maxLength);
            case ("*", long n, string s): return Repeat(s, n, maxLength);
            case ("*", List<object?> l, long n):
                if (l.Count == 0 || n <= 0) return new List<object?>();
                CheckSize(l.Count * Math.Min(n, int.MaxValue), maxLength);
                return Enumerable.Repeat(l, (int)n).SelectMany(x => x).ToList();
        }
        if (a is bool ab) a = ab ? 1L : 0L;
        if (b is bool bb) b = bb ? 1L : 0L;
        if (a is long x && b is long y) return IntegerOp(op, x, y);
        if (TemplateValues.TryNumber(a, out double p) && TemplateValues.TryNumber(b, out double q)) return FloatOp(op, p, q);
        throw new TemplateRuntimeError(
            $"unsupported operand type(s) for {op}: '{TemplateValues.TypeName(a)}' and '{TemplateValues.TypeName(b)}'");
    }

    private static object IntegerOp(string op, long x, long y)
    {
        if (op is "/" or "//" or "%" && y == 0) throw new TemplateRuntimeError("division by zero");
        switch (op)
        {
            case "+": return checked(x + y);
            case "-": return checked(x - y);
            case "*": return checked(x * y);
            case "/": return (double)x / y;
            case "//": return FloorDiv(x, y);
            case "%": return checked(x - (y * FloorDiv(x, y)));
            case "**" when y < 0: return Math.Pow(x, y);
            case "**" when x is 0 or 1: return y == 0 ? 1L : x;
            case "**" when x == -1: return y % 2 == 0 ? 1L : -1L;
            case "**":
                // |x| >= 2, so this overflows within 63 steps rather than looping y times.
                long result = 1;
                for (long i = 0; i < y; i++) result = checked(result * x);
                return result;
            default: throw new TemplateRuntimeError($"unknown operator '{op}'");
        }
    }

    private static long FloorDiv(long x, long y)
    {
        long q = x / y;
        return (x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q;
    }

    private static object FloatOp(string op, double x, double y)
    {
        if (op is "/" or "//" or "%" && y == 0) throw new TemplateRuntimeError("float division by zero");
        return op switch
        {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            "/" => x / y,
            "//" => Math.Floor(x / y),
            "%" => x - (y * Math.Floor(x / y)),
            "**" => Math.Pow(x, y),
            _ => throw new TemplateRuntimeError($"unknown operator '{op}'"),
        };
    }

    private static bool CompareOp(string op, object? a, object? b)
    {
        int c;
        if (TemplateValues.TryNumber(a, out double x) && TemplateValues.TryNumber(b, out double y)) c = x.CompareTo(y);
        else if (a is string s && b is string t) c = string.CompareOrdinal(s, t);
        else if (a is List<object?> l && b is List<object?> m) c = CompareLists(l, m);
        else
            throw new TemplateRuntimeError(
                $"'{op}' not supported between instances of '{TemplateValues.TypeName(a)}' and '{TemplateValues.TypeName(b)}'");
        return op switch { "<" => c < 0, "<=" => c <= 0, ">" => c > 0, _ => c >= 0 };
    }

    private static int CompareLists(List<object?> l, List<object?> m)
    {
        for (int i = 0; i < Math.Min(l.Count, m.Count); i++)
        {
            if (TemplateValues.AreEqual(l[i], m[i])) continue;
            return CompareOp("<", l[i], m[i]) ? -1 : 1;
        }
        return l.Count.CompareTo(m.Count);
    }

    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string t => s.Contains(t, StringComparison.Ordinal),
        string => throw new TemplateRuntimeError($"'in <string>' requires string as left operand, not {TemplateValues.TypeName(item)}"),
        List<object?> list => list.Any(x => TemplateValues.AreEqual(x, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        Undefined => false,
        _ => throw new TemplateRuntimeError($"argument of type '{TemplateValues.TypeName(container)}' is not iterable"),
    };

    public static void FailIfUndefined(object? value)
    {
        if (value is Undefined u) throw new TemplateRuntimeError(u.Hint);
    }

    public static string Checked(string s, int maxLength)
    {
        CheckSize(s.Length, maxLength);
        return s;
    }

    public static void CheckSize(long size, int maxLength)
    {
        if (size > maxLength)
            throw new TemplateRuntimeError($"a value grew past the limit of {maxLength} characters", ChatTemplateErrorKind.LimitExceeded);
    }

    private static string Repeat(string s, long n, int maxLength)
    {
        if (n <= 0 || s.Length == 0) return "";
        CheckSize(s.Length * Math.Min(n, int.MaxValue), maxLength);
        return string.Concat(Enumerable.Repeat(s, (int)n));
    }

    /// <summary><c>obj.name</c>: methods and attributes first, then dict keys, as Jinja's getattr does.</summary>
    public static object? GetAttr(object? obj, string name)
    {
        FailIfUndefined(obj);
        switch (obj)
        {
            case OrderedDictionary<string, object?> dict:
                if (DictMethods.Contains(name)) return new BoundMethod(dict, name);
                return dict.TryGetValue(name, out var v) ? v : new Undefined($"'dict object' has no attribute '{name}'");
            case string s when StringMethods.Contains(name): return new BoundMethod(s, name);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var a) ? a : new Undefined($"'Namespace' has no attribute '{name}'");
            case LoopInfo loop: return loop.Get(name);
            default: return new Undefined($"'{TemplateValues.TypeName(obj)} object' has no attribute '{name}'");
        }
    }

    /// <summary><c>obj[key]</c>: items first (negative list indexes count from the end), then attributes.</summary>
    public static object? GetItem(object? obj, object? key)
    {
        FailIfUndefined(obj);
        switch (obj, key)
        {
            case (OrderedDictionary<string, object?> dict, string k) when dict.TryGetValue(k, out var v): return v;
            case (List<object?> list, long i): return Index(list.Count, i) is int at ? list[at] : new Undefined("list index out of range");
            case (string s, long i): return Index(s.Length, i) is int c ? s[c].ToString() : new Undefined("string index out of range");
            case (_, string name): return GetAttr(obj, name);
            default: return new Undefined($"'{TemplateValues.TypeName(obj)} object' has no item {TemplateValues.Repr(key)}");
        }
    }

    private static int? Index(int count, long i)
    {
        long at = i < 0 ? count + i : i;
        return at >= 0 && at < count ? (int)at : null;
    }

    public static object? Slice(object? obj, object? start, object? stop, object? step)
    {
        FailIfUndefined(obj);
        long st = step is null ? 1 : AsIndex(step);
        if (st == 0) throw new TemplateRuntimeError("slice step cannot be zero");
        int count = obj switch
        {
            List<object?> l => l.Count,
            string s => s.Length,
            _ => throw new TemplateRuntimeError($"'{TemplateValues.TypeName(obj)}' object is not subscriptable"),
        };
        var picked = new List<int>();
        long from = Clamp(start, count, st, st > 0 ? 0 : count - 1);
        long to = Clamp(stop, count, st, st > 0 ? count : -1);
        for (long i = from; st > 0 ? i < to : i > to; i += st) picked.Add((int)i);
        return obj is string str
            ? string.Concat(picked.Select(i => str[i]))
            : picked.Select(i => ((List<object?>)obj)[i]).ToList();
    }

    private static long Clamp(object? bound, int count, long step, long fallback)
    {
        if (bound is null) return fallback;
        long i = AsIndex(bound);
        if (i < 0) i += count;
        return step > 0 ? Math.Clamp(i, 0, count) : Math.Clamp(i, -1, count - 1);
    }

    private static long AsIndex(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new TemplateRuntimeError($"slice indices must be integers or None, not {TemplateValues.TypeName(value)}"),
    };
}
