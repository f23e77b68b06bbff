using System.Text.RegularExpressions;

namespace Strata.LoadTest.Tests;

public sealed partial class ReportTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-report-test-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    private static LoadReport[] Sweep()
    {
        var o = LoadTestOptions.Parse(["--concurrency", "1,2", "--embedded", "--model-path", "x", "--slo-ttft-ms", "100", "--slo-tpot-ms", "50"]);
        return
        [
            Synthetic.Report(o with { Concurrency = 1, Sweep = null }, 4.0, Synthetic.FiveRequests()),
            Synthetic.Report(o with { Concurrency = 2, Sweep = null }, 2.0, Synthetic.FiveRequests()),
        ];
    }

    [GeneratedRegex("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"")]
    private static partial Regex EmbeddedPng();

    [Fact]
    public void Report_writes_markdown_html_with_embedded_pngs_and_the_goodput_numbers()
    {
        var runs = Sweep();
        Assert.Null(ReportDocument.Write(_dir, RunReport.Content(runs), () => Charts.Draw(runs)));

        string[] charts = ["throughput.png", "ttft.png", "tpot.png", "itl.png", "e2e.png", "tokens_over_time.png"];
        foreach (string chart in charts)
            Assert.True(Synthetic.IsPng(File.ReadAllBytes(Path.Combine(_dir, chart))), $"{chart} is not a PNG");

        string html = File.ReadAllText(Path.Combine(_dir, "report.html"));
        var images = EmbeddedPng().Matches(html);
        Assert.Equal(charts.Length, images.Count);
        Assert.All(images, m => Assert.True(Synthetic.IsPng(Convert.FromBase64String(m.Groups[1].Value))));
        Assert.DoesNotContain("http://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<link", html, StringComparison.Ordinal);
        // goodput 2 of 5 requests: 0.50 req/s over 4 s, 1.00 req/s over 2 s
        Assert.Contains("ttft &lt;= 100 ms, tpot &lt;= 50 ms", html, StringComparison.Ordinal);
        Assert.Contains("<td>goodput (req/s)</td><td>0.50</td><td>1.00</td>", html, StringComparison.Ordinal);
        Assert.Contains("2/5 (40.0%)", html, StringComparison.Ordinal);

        string md = File.ReadAllText(Path.Combine(_dir, "report.md"));
        Assert.Contains("| goodput (req/s) | 0.50 | 1.00 |", md, StringComparison.Ordinal);
        Assert.Contains("![", md, StringComparison.Ordinal);
        Assert.Contains("(ttft.png)", md, StringComparison.Ordinal);
    }

    [Fact]
    public void A_rate_run_has_no_concurrency_chart_and_an_empty_metric_still_draws()
    {
        var o = LoadTestOptions.Parse(["--rate", "5", "--embedded", "--model-path", "x"]);
        // Every request has one token: no TPOT and no ITL to draw.
        var run = Synthetic.Report(o, 1.0, Synthetic.Request(0, [10]), Synthetic.Request(5, [30]));
        var charts = Charts.Draw([run]);
        Assert.DoesNotContain(charts, c => c.File == "throughput.png");
        Assert.All(charts, c => Assert.True(Synthetic.IsPng(c.Png), c.File));
    }

    [Fact]
    public void Charts_that_cannot_be_drawn_leave_a_report_that_says_why()
    {
        var runs = Sweep();
        string? error = ReportDocument.Write(_dir, RunReport.Content(runs), () => throw new TypeInitializationException(
            "SkiaSharp.SKImageInfo", new DllNotFoundException("libSkiaSharp.so: cannot open shared object file")));
        Assert.NotNull(error);
        Assert.Contains("SkiaSharp native library could not be loaded", error, StringComparison.Ordinal);
        Assert.Contains(error, File.ReadAllText(Path.Combine(_dir, "report.md")), StringComparison.Ordinal);
        string html = File.ReadAllText(Path.Combine(_dir, "report.html"));
        Assert.Contains("could not be loaded", html, StringComparison.Ordinal);
        Assert.Contains("goodput (req/s)", html, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(_dir, "*.png"));
    }

    [Fact]
    public void Tokens_over_time_sums_each_chunks_tokens_into_its_bucket()
    {
        var run = new RunResult([Synthetic.Request(0, [10, 240, 260], [1, 2, 4]), Synthetic.Request(0, [510], [3])], 0.6, "r");
        // 250 ms buckets over 600 ms: [0,250) gets 1+2, [250,500) gets 4, [500,750) gets 3, then the closing zero.
        Assert.Equal([3, 4, 3, 0], Charts.Buckets(run, 250));
        Assert.Equal(250, Charts.BucketWidthMs(60_000));
        Assert.Equal(100, Charts.BucketWidthMs(3_000));
        Assert.Equal(10, Charts.BucketWidthMs(100));
        Assert.Equal(500, Charts.BucketWidthMs(200_000));
    }
}
