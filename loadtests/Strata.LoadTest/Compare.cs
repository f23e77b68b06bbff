using System.Globalization;
using System.Text.Json;

namespace Strata.LoadTest;

/// <summary><c>--compare A.json B.json</c>: the key metrics of two <c>--json</c> results side by side with B/A
/// ratios; a bad file is a usage error that names it.</summary>
internal static class Compare
{
    /// <summary>Label, path into the JSON, and whether a result may lack it (goodput needs an SLO).</summary>
    private static readonly (string Label, string Path, bool Optional)[] Metrics =
    [
        ("output throughput (tok/s)", "output_tokens_per_second", false),
        ("request throughput (req/s)", "requests_per_second", false),
        ("goodput (req/s)", "goodput.requests_per_second", true),
        ("TTFT p50 (ms)", "ttft_ms.p50", false),
        ("TTFT p99 (ms)", "ttft_ms.p99", false),
        ("TPOT p50 (ms)", "tpot_ms.p50", false),
        ("TPOT p99 (ms)", "tpot_ms.p99", false),
        ("ITL p50 (ms)", "itl_ms.p50", false),
        ("ITL p99 (ms)", "itl_ms.p99", false),
        ("E2E p50 (ms)", "e2e_ms.p50", false),
        ("E2E p99 (ms)", "e2e_ms.p99", false),
        ("max ITL p99 (ms)", "max_itl_ms.p99", false),
        ("max ITL, largest (ms)", "max_itl_ms.max", false),
        ("completed", "completed", false),
        ("failed", "failed", false),
    ];

    public static int Run(LoadTestOptions o, TextWriter stdout, TextWriter stderr)
    {
        var (a, b) = (Load(o.Compare![0]), Load(o.Compare[1]));
        var content = Content(o.Compare[0], a, o.Compare[1], b);
        Print(content, stdout);
        if (o.Report is not null)
        {
            var (la, lb) = (Levels(a), Levels(b));
            // Two sweeps: their throughput curves on one chart. Single runs have no curve to draw.
            Func<IReadOnlyList<Chart>>? draw = la.Count > 1 && lb.Count > 1
                ? () => [Charts.Throughput([("A", Points(la)), ("B", Points(lb))])]
                : null;
            string? chartError = ReportDocument.Write(o.Report, content, draw);
            if (chartError is not null) stderr.WriteLine($"[load] {chartError}");
            stderr.WriteLine($"[load] comparison written to {Path.Combine(o.Report, "report.md")} and report.html");
        }
        return 0;
    }

    /// <summary>Reads one result; every way it can be wrong is a <see cref="UsageException"/> naming the file.</summary>
    public static JsonElement Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new UsageException($"--compare {path}: no such file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--compare {path}: cannot read it ({e.Message})");
        }
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(text);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new UsageException(string.Create(CultureInfo.InvariantCulture,
                $"--compare {path}: not valid JSON (line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1})"));
        }
        if (root.ValueKind != JsonValueKind.Object) throw new UsageException($"--compare {path}: not a strata-loadtest --json result (the top level is not an object)");
        foreach (var m in Metrics.Where(m => !m.Optional))
            if (Number(root, m.Path) is null)
                throw new UsageException($"--compare {path}: no number at '{m.Path}'; is it a strata-loadtest --json result?");
        return root;
    }

    private static double? Number(JsonElement e, string path)
    {
        foreach (string part in path.Split('.'))
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(part, out e)) return null;
        }
        return e.ValueKind == JsonValueKind.Number ? e.GetDouble() : null;
    }

    private static string F(double? v) => v is { } x ? x.ToString("0.##", CultureInfo.InvariantCulture) : "-";

    /// <summary>B/A as "1.23x"; "-" when either is missing or A is 0 (and B is not).</summary>
    public static string Ratio(double? a, double? b) => (a, b) switch
    {
        (null, _) or (_, null) => "-",
        (0, 0) => "1.00x",
        (0, _) => "-",
        var (x, y) => (y!.Value / x!.Value).ToString("0.00", CultureInfo.InvariantCulture) + "x",
    };

    public static ReportContent Content(string pathA, JsonElement a, string pathB, JsonElement b)
    {
        var rows = Metrics
            .Where(m => !m.Optional || Number(a, m.Path) is not null || Number(b, m.Path) is not null)
            .Select(m => (IReadOnlyList<string>)[m.Label, F(Number(a, m.Path)), F(Number(b, m.Path)), Ratio(Number(a, m.Path), Number(b, m.Path))])
            .ToList();
        var tables = new List<Table> { new("Key metrics", ["metric", "A", "B", "B/A"], rows) };

        // Two sweeps: output throughput and TTFT p50 at every concurrency both ran.
        var (la, lb) = (Levels(a), Levels(b));
        var common = la.Keys.Intersect(lb.Keys).Order().ToArray();
        if (common.Length > 0)
        {
            var levelRows = new List<IReadOnlyList<string>>();
            foreach (int c in common)
            {
                foreach (var (label, path) in new[] { ("output tok/s", "output_tokens_per_second"), ("TTFT p50 (ms)", "ttft_ms.p50") })
                {
                    double? x = Number(la[c], path), y = Number(lb[c], path);
                    levelRows.Add([string.Create(CultureInfo.InvariantCulture, $"concurrency {c}: {label}"), F(x), F(y), Ratio(x, y)]);
                }
            }
            tables.Add(new("Sweep levels", ["metric", "A", "B", "B/A"], levelRows));
        }
        var notes = new List<string> { $"A: {pathA} ({Describe(a)})", $"B: {pathB} ({Describe(b)})", "B/A above 1 means B is higher: better for throughput, worse for latency." };
        return new ReportContent("Strata load test comparison", notes, tables);
    }

    private static (int, double)[] Points(Dictionary<int, JsonElement> levels) =>
        levels.Select(l => (l.Key, Number(l.Value, "output_tokens_per_second") ?? 0)).ToArray();

    private static Dictionary<int, JsonElement> Levels(JsonElement root)
    {
        var levels = new Dictionary<int, JsonElement>();
        if (root.TryGetProperty("levels", out var list) && list.ValueKind == JsonValueKind.Array)
            foreach (var level in list.EnumerateArray())
                if (Number(level, "settings.concurrency") is { } c) levels[(int)c] = level;
        return levels;
    }

    private static string Describe(JsonElement root)
    {
        if (!root.TryGetProperty("settings", out var s) || s.ValueKind != JsonValueKind.Object) return "no settings recorded";
        string Str(string name) => s.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : "-";
        string arrivals = Str("arrivals") switch
        {
            "closed_loop" when root.TryGetProperty("concurrency_levels", out var levels) && levels.ValueKind == JsonValueKind.Array =>
                $"closed loop, sweep over concurrency {string.Join(", ", levels.EnumerateArray())}; key metrics of concurrency {Str("concurrency")}",
            "closed_loop" => $"closed loop, concurrency {Str("concurrency")}",
            "poisson" => $"Poisson, {Str("rate")} req/s",
            var x => x,
        };
        return $"model {Str("model")}, {arrivals}, {Str("requests")} requests";
    }

    private static void Print(ReportContent content, TextWriter w)
    {
        w.WriteLine($"============ {content.Title} ============");
        foreach (var note in content.Notes) w.WriteLine(note);
        foreach (var table in content.Tables)
        {
            w.WriteLine();
            w.WriteLine($"-- {table.Heading} --");
            int first = Math.Max(table.Columns[0].Length, table.Rows.Max(r => r[0].Length)) + 2;
            w.WriteLine(table.Columns[0].PadRight(first) + string.Concat(table.Columns.Skip(1).Select(c => c.PadLeft(12))));
            foreach (var row in table.Rows) w.WriteLine(row[0].PadRight(first) + string.Concat(row.Skip(1).Select(c => c.PadLeft(12))));
        }
        w.Flush();
    }
}
