using System.Globalization;
using System.Text;

namespace Strata.Models.Chat;

/// <summary>
/// The <c>tojson</c> filter as transformers defines it: Python's <c>json.dumps</c> with <c>ensure_ascii=False</c>,
/// so non-ASCII text stays as is, nothing is HTML-escaped, and separators are <c>", "</c> and <c>": "</c>
/// (<c>","</c> between items once an indent puts them on their own lines).
/// </summary>
internal static class TemplateJson
{
    public static string Serialize(object? value, int? indent, int maxLength)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent, 0, maxLength);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? value, int? indent, int level, int maxLength)
    {
        if (level > 100) throw new TemplateRuntimeError("value nests too deeply for tojson", ChatTemplateErrorKind.LimitExceeded);
        TemplateOperators.CheckSize(sb.Length, maxLength);
        switch (value)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : TemplateValues.FormatFloat(d));
                break;
            case string s: WriteString(sb, s); break;
            case List<object?> list:
                WriteContainer(sb, '[', ']', list.Count, indent, level, (i, lvl) => Write(sb, list[i], indent, lvl, maxLength));
                break;
            case OrderedDictionary<string, object?> dict:
                WriteContainer(sb, '{', '}', dict.Count, indent, level, (i, lvl) =>
                {
                    var (k, v) = dict.GetAt(i);
                    WriteString(sb, k);
                    sb.Append(": ");
                    Write(sb, v, indent, lvl, maxLength);
                });
                break;
            default:
                throw new TemplateRuntimeError($"Object of type {TemplateValues.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteContainer(
        StringBuilder sb, char open, char close, int count, int? indent, int level, Action<int, int> writeItem)
    {
        sb.Append(open);
        if (count == 0)
        {
            sb.Append(close);
            return;
        }
        for (int i = 0; i < count; i++)
        {
            if (i > 0) sb.Append(indent is null ? ", " : ",");
            if (indent is int n) sb.Append('\n').Append(' ', n * (level + 1));
            writeItem(i, level + 1);
        }
        if (indent is int m) sb.Append('\n').Append(' ', m * level);
        sb.Append(close);
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append(@"\\"); break;
                case '\n': sb.Append(@"\n"); break;
                case '\r': sb.Append(@"\r"); break;
                case '\t': sb.Append(@"\t"); break;
                case '\b': sb.Append(@"\b"); break;
                case '\f': sb.Append(@"\f"); break;
                case < ' ': sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}"); break;
                default: sb.Append(c); break;
            }
        }
        sb.Append('"');
    }
}
