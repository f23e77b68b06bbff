using System.Collections.Frozen;
using System.Globalization;
using System.Text;

namespace Strata.Models.Chat;

/// <summary>Jinja's filters (<c>value | name(args)</c>) and tests (<c>value is name</c>) that chat templates use.</summary>
internal static class TemplateFilters
{
    private static readonly FrozenSet<string> Filters = new[]
    {
        "abs", "capitalize", "count", "d", "default", "first", "float", "int", "items", "join", "last", "length", "list",
        "lower", "map", "reject", "rejectattr", "replace", "reverse", "safe", "select", "selectattr", "string", "title",
        "tojson", "trim", "unique", "upper",
    }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly FrozenSet<string> Tests = new[]
    {
        "defined", "undefined", "none", "string", "mapping", "iterable", "sequence", "number", "integer", "float",
        "boolean", "true", "false", "callable", "odd", "even", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "<",
        "le", "<=", "gt", ">", "ge", ">=", "in", "sameas", "lower", "upper",
    }.ToFrozenSet(StringComparer.Ordinal);

    public static bool IsFilter(string name) => Filters.Contains(name);

    public static bool IsTest(string name) => Tests.Contains(name);

    public static object? Apply(string name, object? value, ArgValues args, int maxLength)
    {
        switch (name)
        {
            case "default" or "d":
                bool boolean = TemplateValues.IsTrue(args.Get(1, "boolean", false));
                bool missing = value is Undefined || (boolean && !TemplateValues.IsTrue(value));
                return missing ? args.Get(0, "default_value", "") : value;
            case "length" or "count": return TemplateValues.Length(value);
            case "tojson":
                int? indent = args.Get(0, "indent") is long n ? (int)Math.Clamp(n, 0, 64) : null;
                return TemplateJson.Serialize(value, indent, maxLength);
            case "string": return TemplateValues.ToStr(value);
            case "safe": return value;
            case "list": return TemplateValues.Iterate(value).ToList();
            case "items": return Items(value);
            case "first": return TemplateValues.Iterate(value) is { Count: > 0 } f ? f[0] : new Undefined("no first item, sequence was empty");
            case "last": return TemplateValues.Iterate(value) is { Count: > 0 } l ? l[^1] : new Undefined("no last item, sequence was empty");
            case "reverse": return value is string s ? new string(s.Reverse().ToArray()) : TemplateValues.Iterate(value).Reverse().ToList();
            case "unique": return Unique(TemplateValues.Iterate(value));
            case "join": return Join(value, args, maxLength);
            case "map": return Map(value, args, maxLength);
            case "select" or "reject": return Select(value, args, name == "select", byAttribute: false, maxLength);
            case "selectattr" or "rejectattr": return Select(value, args, name == "selectattr", byAttribute: true, maxLength);
            case "int": return ToInt(value, args.Get(0, "default", 0L));
            case "float": return ToFloat(value, args.Get(0, "default", 0.0));
            case "abs": return value switch { long i when i != long.MinValue => (object)Math.Abs(i), double x => Math.Abs(x), bool b => b ? 1L : 0L, _ => throw BadType(name, value) };
            default: return StringFilter(name, TemplateValues.ToStr(value), args, maxLength);
        }
    }

    private static object? StringFilter(string name, string s, ArgValues args, int maxLength) => name switch
    {
        "trim" => args.Get(0, "chars") is string chars ? s.Trim(chars.ToCharArray()) : s.Trim(),
        "upper" => s.ToUpperInvariant(),
        "lower" => s.ToLowerInvariant(),
        "capitalize" => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
        "title" => JinjaTitle(s),
        "replace" => TemplateFunctions.Replace(s, Str(args.Get(0, "old"), "replace"), Str(args.Get(1, "new"), "replace"),
            args.Get(2, "count") is long c ? c : -1, maxLength),
        _ => throw new TemplateRuntimeError($"unknown filter '{name}'"),
    };

    /// <summary>Jinja's title filter: each word (split at spaces, dashes and brackets) capitalised.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
        }
        return sb.ToString();
    }

    public static string Str(object? value, string what) =>
        value as string ?? throw new TemplateRuntimeError($"{what}: expected a string, got '{TemplateValues.TypeName(value)}'");

    private static TemplateRuntimeError BadType(string filter, object? value) =>
        new($"filter '{filter}' cannot take a value of type '{TemplateValues.TypeName(value)}'");

    private static List<object?> Items(object? value) => value switch
    {
        OrderedDictionary<string, object?> dict => dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
        Undefined => [],
        _ => throw BadType("items", value),
    };

    private static List<object?> Unique(IReadOnlyList<object?> items)
    {
        var result = new List<object?>();
        foreach (var item in items)
            if (!result.Any(r => TemplateValues.AreEqual(r, item))) result.Add(item);
        return result;
    }

    private static string Join(object? value, ArgValues args, int maxLength)
    {
        string sep = TemplateValues.ToStr(args.Get(0, "d", ""));
        var items = TemplateValues.Iterate(value);
        if (args.Get(1, "attribute") is { } attr) items = items.Select(i => Attribute(i, attr)).ToList();
        var sb = new StringBuilder();
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) sb.Append(sep);
            sb.Append(TemplateValues.ToStr(items[i]));
            TemplateOperators.CheckSize(sb.Length, maxLength);
        }
        return sb.ToString();
    }

    /// <summary><c>map(attribute='a.b')</c> or <c>map('filter', args...)</c>.</summary>
    private static List<object?> Map(object? value, ArgValues args, int maxLength)
    {
        var items = TemplateValues.Iterate(value);
        if (args.Named.TryGetValue("attribute", out var attr))
        {
            return items.Select(i =>
                Attribute(i, attr) is var v && v is Undefined && args.Named.TryGetValue("default", out var d) ? d : v).ToList();
        }
        string filter = Str(args.Get(0, "filter"), "map");
        if (!IsFilter(filter)) throw new TemplateRuntimeError($"unknown filter '{filter}'");
        var rest = new ArgValues(args.Positional.Skip(1).ToList(), args.Named);
        return items.Select(i => Apply(filter, i, rest, maxLength)).ToList();
    }

    private static List<object?> Select(object? value, ArgValues args, bool keep, bool byAttribute, int maxLength)
    {
        var positional = args.Positional;
        object? attr = null;
        if (byAttribute)
        {
            attr = positional.Count > 0 ? positional[0] : throw new TemplateRuntimeError("selectattr/rejectattr need an attribute name");
            positional = positional.Skip(1).ToList();
        }
        string? test = positional.Count > 0 ? Str(positional[0], "select") : null;
        if (test is not null && !IsTest(test)) throw new TemplateRuntimeError($"unknown test '{test}'");
        var testArgs = new ArgValues(positional.Skip(1).ToList(), new Dictionary<string, object?>());
        var result = new List<object?>();
        foreach (var item in TemplateValues.Iterate(value))
        {
            var subject = byAttribute ? Attribute(item, attr) : item;
            bool passed = test is null ? TemplateValues.IsTrue(subject) : RunTest(test, subject, testArgs);
            if (passed == keep) result.Add(item);
        }
        TemplateOperators.CheckSize(result.Count, maxLength);
        return result;
    }

    /// <summary>A dotted attribute path such as <c>function.name</c>; numeric parts index lists.</summary>
    private static object? Attribute(object? item, object? path)
    {
        if (path is long index) return TemplateOperators.GetItem(item, index);
        foreach (string part in Str(path, "attribute").Split('.'))
        {
            object key = long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? i : part;
            item = item is Undefined ? item : TemplateOperators.GetItem(item, key);
        }
        return item;
    }

    private static object? ToInt(object? value, object? fallback) => value switch
    {
        long l => l,
        bool b => b ? 1L : 0L,
        double d when double.IsFinite(d) && Math.Abs(d) < 9.2e18 => (long)Math.Truncate(d),
        string s when long.TryParse(s.Trim().Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l) => l,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && Math.Abs(d) < 9.2e18 => (long)Math.Truncate(d),
        _ => fallback,
    };

    private static object? ToFloat(object? value, object? fallback) => value switch
    {
        long l => (double)l,
        double d => d,
        bool b => b ? 1.0 : 0.0,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => fallback,
    };

    public static bool RunTest(string name, object? value, ArgValues args)
    {
        object? arg = args.Get(0, "value");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "mapping" => value is OrderedDictionary<string, object?>,
            "iterable" => value is string or List<object?> or OrderedDictionary<string, object?> or Undefined,
            "sequence" => value is string or List<object?> or OrderedDictionary<string, object?>,
            "number" => value is long or double or bool,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "callable" => value is BoundMethod or BuiltinFunction or MacroValue,
            "odd" => AsLong(value, name) % 2 != 0,
            "even" => AsLong(value, name) % 2 == 0,
            "divisibleby" => AsLong(arg, name) is long d && d != 0 ? AsLong(value, name) % d == 0 : throw new TemplateRuntimeError("division by zero"),
            "eq" or "equalto" or "==" => TemplateValues.AreEqual(value, arg),
            "ne" or "!=" => !TemplateValues.AreEqual(value, arg),
            "lt" or "<" or "le" or "<=" or "gt" or ">" or "ge" or ">=" => (bool)TemplateOperators.Binary(CompareSymbol(name), value, arg, int.MaxValue)!,
            "in" => TemplateOperators.Contains(arg, value),
            "sameas" => ReferenceEquals(value, arg) || (value is bool or null && Equals(value, arg)),
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string u && u == u.ToUpperInvariant(),
            _ => throw new TemplateRuntimeError($"unknown test '{name}'"),
        };
    }

    private static string CompareSymbol(string name) => name switch
    {
        "lt" => "<",
        "le" => "<=",
        "gt" => ">",
        "ge" => ">=",
        _ => name,
    };

    private static long AsLong(object? value, string test) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new TemplateRuntimeError($"test '{test}' needs an integer, got '{TemplateValues.TypeName(value)}'"),
    };
}
