using System.Globalization;
using ScottPlot;

namespace Strata.LoadTest;

/// <summary>One chart of a report: its file name, its title and the PNG.</summary>
internal sealed record Chart(string File, string Title, byte[] Png);

/// <summary>The charts of a load test report, drawn with ScottPlot: throughput against concurrency, the TTFT, TPOT,
/// ITL and E2E distributions (CDFs, one line per run) and output tokens over time (so stalls show).</summary>
internal static class Charts
{
    private const int Width = 1000, Height = 600;
    /// <summary>Width of a tokens-over-time bucket for runs of 5 s to 150 s.</summary>
    private const double BucketMs = 250;

    public static IReadOnlyList<Chart> Draw(IReadOnlyList<LoadReport> runs)
    {
        var charts = new List<Chart>();
        if (runs.All(r => r.Concurrency is not null)) charts.Add(Throughput(runs));
        var slo = runs[0].Options.Slo;
        charts.Add(Cdf("ttft.png", "Time to first token (TTFT)", "TTFT (ms)", runs, r => r.Ok ? [r.TtftMs] : [], slo.TtftMs));
        charts.Add(Cdf("tpot.png", "Time per output token (TPOT)", "TPOT (ms)", runs,
            r => r.Ok && r.TpotMs is { } t ? [t] : [], slo.TpotMs));
        charts.Add(Cdf("itl.png", "Inter-token latency (ITL)", "ITL: gap between successive chunks (ms)", runs,
            r => r.Ok ? r.ChunkMs.Zip(r.ChunkMs.Skip(1), (a, b) => b - a) : [], null));
        charts.Add(Cdf("e2e.png", "End-to-end latency (E2E)", "E2E (ms)", runs, r => r.Ok ? [r.E2EMs] : [], slo.E2EMs));
        charts.Add(TokensOverTime(runs));
        return charts;
    }

    /// <summary>Name of one run in a legend.</summary>
    public static string Label(LoadReport r) => r.Concurrency is { } c
        ? string.Create(CultureInfo.InvariantCulture, $"concurrency {c}")
        : r.Options.Arrivals;

    private static Chart Throughput(IReadOnlyList<LoadReport> runs) => Throughput(
        [(null, runs.Select(r => (r.Concurrency!.Value, r.OutputTokensPerSecond)).ToArray())]);

    /// <summary>Output tok/s against concurrency, one line per series (one run's levels, or two compared sweeps).</summary>
    public static Chart Throughput(IReadOnlyList<(string? Label, (int Concurrency, double TokensPerSecond)[] Points)> series)
    {
        var plot = NewPlot("Output throughput against concurrency", "concurrency (closed-loop clients)", "output throughput (tok/s)");
        double[] levels = series.SelectMany(s => s.Points.Select(p => (double)p.Concurrency)).Distinct().Order().ToArray();
        // Doubling sweeps (1, 2, 4, 8, ...) read best on a log2 axis: equal steps per doubling.
        bool log = levels.Length > 1 && levels[^1] / levels[0] >= 8;
        double At(double x) => log ? Math.Log2(x) : x;
        double yMax = 1;
        foreach (var (label, points) in series)
        {
            var sorted = points.OrderBy(p => p.Concurrency).ToArray();
            var line = plot.Add.Scatter(sorted.Select(p => At(p.Concurrency)).ToArray(), sorted.Select(p => p.TokensPerSecond).ToArray());
            line.LineWidth = 3;
            line.MarkerSize = 12;
            if (label is not null) line.LegendText = label;
            yMax = Math.Max(yMax, sorted.Max(p => p.TokensPerSecond));
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            levels.Select(x => new Tick(At(x), x.ToString(CultureInfo.InvariantCulture))).ToArray());
        if (log) plot.XLabel("concurrency (closed-loop clients, log scale)", size: 20);
        if (levels.Length == 1) plot.XLabel("concurrency (closed-loop clients; --concurrency 1,2,4,8 draws a curve)", size: 20);
        double pad = levels.Length > 1 ? (At(levels[^1]) - At(levels[0])) * 0.05 : 0.5;
        plot.Axes.SetLimits(At(levels[0]) - pad, At(levels[^1]) + pad, 0, yMax * 1.15);
        if (series.Any(s => s.Label is not null)) Legend(plot);
        return Render(plot, "throughput.png");
    }

    private static Chart Cdf(string file, string title, string xLabel, IReadOnlyList<LoadReport> runs,
        Func<RequestResult, IEnumerable<double>> values, double? target)
    {
        // Latency has long tails (a warm-up, a stall): a log time axis shows the body and the tail at once.
        var plot = NewPlot(title + ": CDF", xLabel + ", log scale", "share at or below (%)");
        double lo = double.MaxValue, hi = 0;
        foreach (var run in runs)
        {
            double[] sorted = run.Run.Requests.SelectMany(values).Select(v => Math.Max(v, MinMs)).Order().ToArray();
            if (sorted.Length == 0) continue;
            // At most ~2000 points per line: every rank for small runs, evenly spaced ranks for large ones.
            int step = Math.Max(1, sorted.Length / 2000);
            var ranks = Enumerable.Range(0, sorted.Length).Where(i => i % step == 0 || i == sorted.Length - 1).ToArray();
            double[] xs = ranks.Select(i => Math.Log10(sorted[i])).Prepend(Math.Log10(sorted[0])).ToArray();
            double[] ys = ranks.Select(i => 100.0 * (i + 1) / sorted.Length).Prepend(0).ToArray();
            var line = plot.Add.Scatter(xs, ys);
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LineWidth = 3;
            line.MarkerSize = 0;
            line.LegendText = Label(run);
            (lo, hi) = (Math.Min(lo, sorted[0]), Math.Max(hi, sorted[^1]));
        }
        if (target is { } t)
        {
            var slo = plot.Add.VerticalLine(Math.Log10(t));
            slo.LinePattern = LinePattern.Dashed;
            slo.LineWidth = 2;
            slo.Color = Colors.Red;
            slo.LegendText = string.Create(CultureInfo.InvariantCulture, $"SLO {t:G} ms");
            (lo, hi) = (Math.Min(lo, t), Math.Max(hi, t));
        }
        if (hi == 0)
        {
            plot.Add.Annotation("no values", Alignment.MiddleCenter);
            (lo, hi) = (1, 10);
        }
        // Limits a little past the data (and the SLO line), ticks over every decade they touch.
        double left = Math.Log10(lo) - 0.08, right = Math.Max(Math.Log10(hi) + 0.08, left + 0.5);
        plot.Axes.Bottom.TickGenerator = LogTicks((int)Math.Floor(left), (int)Math.Ceiling(right));
        plot.Axes.SetLimits(left, right, 0, 102);
        Legend(plot);
        return Render(plot, file);
    }

    /// <summary>Smallest time a log axis shows; a gap of 0 (two chunks in one clock tick) is drawn there.</summary>
    private const double MinMs = 0.01;

    /// <summary>Ticks 1, 2, 5 per decade (labelled) and the other integers (unlabelled) on a log10 axis.</summary>
    private static ScottPlot.TickGenerators.NumericManual LogTicks(int fromDecade, int toDecade)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int d = fromDecade; d <= toDecade; d++)
            for (int m = 1; m <= 9 && (d < toDecade || m == 1); m++)
            {
                double v = m * Math.Pow(10, d);
                if (m is 1 or 2 or 5) ticks.AddMajor(Math.Log10(v), v.ToString("G4", CultureInfo.InvariantCulture));
                else ticks.AddMinor(Math.Log10(v));
            }
        return ticks;
    }

    private static Chart TokensOverTime(IReadOnlyList<LoadReport> runs)
    {
        double longestMs = runs.Max(r => r.Run.WallSeconds) * 1000;
        double bucket = BucketWidthMs(longestMs);
        string width = bucket.ToString("G", CultureInfo.InvariantCulture);
        var plot = NewPlot($"Output tokens over time ({width} ms buckets)", "time since the run started (s)",
            $"output tokens per {width} ms");
        double yMax = 1;
        foreach (var run in runs)
        {
            long[] counts = Buckets(run.Run, bucket);
            var line = plot.Add.Scatter(counts.Select((_, i) => i * bucket / 1000).ToArray(), counts.Select(c => (double)c).ToArray());
            line.ConnectStyle = ConnectStyle.StepHorizontal;
            line.LineWidth = 2;
            line.MarkerSize = 0;
            line.LegendText = Label(run);
            yMax = Math.Max(yMax, counts.DefaultIfEmpty(0).Max());
        }
        plot.Axes.SetLimits(0, Math.Max(bucket, longestMs) / 1000, 0, yMax * 1.15);
        Legend(plot);
        return Render(plot, "tokens_over_time.png");
    }

    /// <summary>250 ms buckets; narrower (100, 50, 25, 10 ms) for runs too short to show 20 of them, wider (multiples
    /// of 250 ms) for runs that would need more than 600.</summary>
    public static double BucketWidthMs(double runMs)
    {
        if (runMs > 600 * BucketMs) return Math.Ceiling(runMs / 600 / BucketMs) * BucketMs;
        foreach (double w in new[] { BucketMs, 100, 50, 25 })
            if (runMs / w >= 20) return w;
        return 10;
    }

    /// <summary>Output tokens whose chunk arrived in each bucket of the run (bucket i covers [i*w, (i+1)*w) ms from
    /// the start), with a final zero bucket so the step line closes at the end.</summary>
    public static long[] Buckets(RunResult run, double bucketMs)
    {
        int n = (int)Math.Ceiling(run.WallSeconds * 1000 / bucketMs) + 1;
        var counts = new long[Math.Max(n, 1)];
        foreach (var r in run.Requests)
            for (int i = 0; i < r.ChunkMs.Count; i++)
            {
                int b = Math.Clamp((int)(r.ChunkMs[i] / bucketMs), 0, counts.Length - 1);
                counts[b] += i < r.ChunkTokens.Count ? r.ChunkTokens[i] : 1;
            }
        return counts;
    }

    private static Plot NewPlot(string title, string x, string y)
    {
        var plot = new Plot();
        // Without fontconfig SkiaSharp falls back to a serif face; ask for the usual sans faces (absent ones fall back).
        plot.Font.Set(SansFont());
        plot.Title(title, size: 24);
        plot.XLabel(x, size: 20);
        plot.YLabel(y, size: 20);
        foreach (var axis in new IAxis[] { plot.Axes.Bottom, plot.Axes.Left })
        {
            axis.TickLabelStyle.FontSize = 17;
            axis.MajorTickStyle.Length = 6;
        }
        return plot;
    }

    private static string SansFont()
    {
        foreach (string name in new[] { "DejaVu Sans", "Liberation Sans", "Arial", "Helvetica" })
            if (SkiaSharp.SKFontManager.Default.MatchFamily(name) is { } face)
            {
                face.Dispose();
                return name;
            }
        return Fonts.Sans;
    }

    /// <summary>The legend right of the data, where it hides no line.</summary>
    private static void Legend(Plot plot)
    {
        plot.ShowLegend(Edge.Right);
        plot.Legend.FontSize = 17;
    }

    private static Chart Render(Plot plot, string file)
    {
        string title = plot.Axes.Title.Label.Text;
        return new Chart(file, title, plot.GetImageBytes(Width, Height, ImageFormat.Png));
    }
}
