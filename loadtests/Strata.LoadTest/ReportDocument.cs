using System.Net;
using System.Text;

namespace Strata.LoadTest;

/// <summary>A table of a report: a heading, column names and rows of cells already formatted; numbers are right
/// aligned unless <see cref="Text"/> says the cells are words.</summary>
internal sealed record Table(string Heading, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyList<string>> Rows, bool Text = false);

/// <summary>What a report holds: a title, lines of text under it, tables, and the charts (drawn when written).</summary>
internal sealed record ReportContent(string Title, IReadOnlyList<string> Notes, IReadOnlyList<Table> Tables);

/// <summary>Writes a report as DIR/report.md (charts beside it as PNG files) and DIR/report.html (one self-contained
/// file: the PNGs embedded as data URIs, the style inline). When the charts cannot be drawn (no SkiaSharp native
/// library on this platform, say) the report is written without them and says why.</summary>
internal static class ReportDocument
{
    /// <summary>Writes the report; returns why the charts are missing, or null when they were drawn.</summary>
    public static string? Write(string dir, ReportContent content, Func<IReadOnlyList<Chart>>? draw)
    {
        Directory.CreateDirectory(dir);
        IReadOnlyList<Chart> charts = [];
        string? chartError = null;
        if (draw is not null)
        {
            try
            {
                charts = draw();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                chartError = "charts were not drawn: " + Reason(e) + "; the tables hold every number";
            }
        }
        foreach (var chart in charts) File.WriteAllBytes(Path.Combine(dir, chart.File), chart.Png);
        File.WriteAllText(Path.Combine(dir, "report.md"), Markdown(content, charts, chartError));
        File.WriteAllText(Path.Combine(dir, "report.html"), Html(content, charts, chartError));
        return chartError;
    }

    private static string Reason(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (x is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
                return $"the SkiaSharp native library could not be loaded ({FirstSentence(x.Message)}); it ships in SkiaSharp's NativeAssets package for this platform";
        var inner = e is TypeInitializationException { InnerException: { } i } ? i : e;
        return $"{inner.GetType().Name}: {inner.Message}";
    }

    /// <summary>The loader's messages run to many lines of advice; the first sentence says what failed.</summary>
    private static string FirstSentence(string message)
    {
        string line = message.Split('\n', 2)[0].Trim();
        int end = line.IndexOf(". ", StringComparison.Ordinal);
        return end > 0 ? line[..end] : line.TrimEnd('.');
    }

    public static string Markdown(ReportContent content, IReadOnlyList<Chart> charts, string? chartError)
    {
        var md = new StringBuilder();
        md.Append("# ").AppendLine(content.Title).AppendLine();
        foreach (var note in content.Notes) md.AppendLine(note).AppendLine();
        foreach (var table in content.Tables)
        {
            md.Append("## ").AppendLine(table.Heading).AppendLine();
            md.Append("| ").AppendJoin(" | ", table.Columns.Select(Cell)).AppendLine(" |");
            md.Append('|').AppendJoin("|", table.Columns.Select((_, i) => i == 0 || table.Text ? " --- " : " ---: ")).AppendLine("|");
            foreach (var row in table.Rows) md.Append("| ").AppendJoin(" | ", row.Select(Cell)).AppendLine(" |");
            md.AppendLine();
        }
        if (charts.Count > 0 || chartError is not null) md.AppendLine("## Charts").AppendLine();
        if (chartError is not null) md.Append("> ").AppendLine(chartError).AppendLine();
        foreach (var chart in charts) md.Append("![").Append(chart.Title).Append("](").Append(chart.File).AppendLine(")").AppendLine();
        return md.ToString();
    }

    private static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);

    public static string Html(ReportContent content, IReadOnlyList<Chart> charts, string? chartError)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        var h = new StringBuilder();
        h.AppendLine("<!DOCTYPE html>").AppendLine("<html lang=\"en\"><head><meta charset=\"utf-8\">");
        h.Append("<title>").Append(E(content.Title)).AppendLine("</title>");
        h.AppendLine("""
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1040px; padding: 0 1em; color: #222; }
            table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
            th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; }
            td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
            table.text td { text-align: left; }
            th { background: #f3f3f3; }
            img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0 1.5em; }
            .warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
            </style>
            </head><body>
            """);
        h.Append("<h1>").Append(E(content.Title)).AppendLine("</h1>");
        foreach (var note in content.Notes) h.Append("<p>").Append(E(note)).AppendLine("</p>");
        foreach (var table in content.Tables)
        {
            h.Append("<h2>").Append(E(table.Heading)).AppendLine("</h2>").AppendLine(table.Text ? "<table class=\"text\">" : "<table>");
            h.Append("<tr>").AppendJoin("", table.Columns.Select(c => $"<th>{E(c)}</th>")).AppendLine("</tr>");
            foreach (var row in table.Rows) h.Append("<tr>").AppendJoin("", row.Select(c => $"<td>{E(c)}</td>")).AppendLine("</tr>");
            h.AppendLine("</table>");
        }
        if (charts.Count > 0 || chartError is not null) h.AppendLine("<h2>Charts</h2>");
        if (chartError is not null) h.Append("<p class=\"warning\">").Append(E(chartError)).AppendLine("</p>");
        foreach (var chart in charts)
            h.Append("<figure><img alt=\"").Append(E(chart.Title)).Append("\" src=\"data:image/png;base64,")
                .Append(Convert.ToBase64String(chart.Png)).AppendLine("\"></figure>");
        h.AppendLine("</body></html>");
        return h.ToString();
    }
}
