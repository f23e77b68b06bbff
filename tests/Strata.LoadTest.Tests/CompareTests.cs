using System.Globalization;
using System.Text.Json.Nodes;

namespace Strata.LoadTest.Tests;

public sealed class CompareTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("strata-compare-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Result(string name, double tokPerS, double reqPerS, double ttftP50, int failed)
    {
        string path = Path.Combine(_dir, name);
        static string Stats(double p50) => string.Create(CultureInfo.InvariantCulture,
            $"{{\"p50\": {p50}, \"p90\": {p50 * 2}, \"p99\": {p50 * 4}, \"mean\": {p50}, \"count\": 10}}");
        File.WriteAllText(path, string.Create(CultureInfo.InvariantCulture, $$"""
            {"completed": 10, "failed": {{failed}}, "output_tokens_per_second": {{tokPerS}}, "requests_per_second": {{reqPerS}},
             "ttft_ms": {{Stats(ttftP50)}}, "tpot_ms": {{Stats(2)}}, "itl_ms": {{Stats(2)}}, "e2e_ms": {{Stats(100)}},
             "max_itl_ms": {"p50": 5, "p99": 8, "max": 10, "count": 10},
             "settings": {"model": "tiny", "arrivals": "closed_loop", "concurrency": 4, "requests": 10} }
            """));
        return path;
    }

    [Fact]
    public async Task Compare_prints_b_over_a_ratios_and_writes_the_report()
    {
        string a = Result("a.json", 1000, 10, 50, 0), b = Result("b.json", 1500, 12.5, 25, 2);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int rc = await LoadTestApp.RunAsync(["--compare", a, b, "--report", Path.Combine(_dir, "report")], stdout, stderr);
        Assert.True(rc == 0, stderr.ToString());

        var rows = Compare.Content(a, Compare.Load(a), b, Compare.Load(b)).Tables[0].Rows.ToDictionary(r => r[0], r => r.Skip(1).ToArray());
        Assert.Equal(["1000", "1500", "1.50x"], rows["output throughput (tok/s)"]);
        Assert.Equal(["10", "12.5", "1.25x"], rows["request throughput (req/s)"]);
        Assert.Equal(["50", "25", "0.50x"], rows["TTFT p50 (ms)"]);
        Assert.Equal(["200", "100", "0.50x"], rows["TTFT p99 (ms)"]);
        Assert.Equal(["10", "10", "1.00x"], rows["max ITL, largest (ms)"]);
        Assert.Equal(["0", "2", "-"], rows["failed"]);
        Assert.False(rows.ContainsKey("goodput (req/s)")); // neither result had an SLO

        Assert.Contains("1.50x", stdout.ToString(), StringComparison.Ordinal);
        string md = File.ReadAllText(Path.Combine(_dir, "report", "report.md"));
        Assert.Contains("| output throughput (tok/s) | 1000 | 1500 | 1.50x |", md, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_dir, "report", "report.html")));
    }

    [Fact]
    public async Task Two_sweeps_compare_level_by_level_and_chart_both_curves()
    {
        string Sweep(string name, double scale)
        {
            var levels = new[] { 1, 2, 4 }.Select(c => JsonNode.Parse(File.ReadAllText(Result($"{name}-{c}.json", 100 * c * scale, c, 10, 0)))!).ToArray();
            foreach (var (level, c) in levels.Zip(new[] { 1, 2, 4 })) level["settings"]!["concurrency"] = c;
            var root = levels[^1].DeepClone();
            root["concurrency_levels"] = new JsonArray(1, 2, 4);
            root["levels"] = new JsonArray(levels.Select(l => l.DeepClone()).ToArray());
            string path = Path.Combine(_dir, name + ".json");
            File.WriteAllText(path, root.ToJsonString());
            return path;
        }
        string a = Sweep("a", 1), b = Sweep("b", 2), report = Path.Combine(_dir, "sweeps");
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(0, await LoadTestApp.RunAsync(["--compare", a, b, "--report", report], stdout, stderr));
        Assert.Contains("concurrency 2: output tok/s", stdout.ToString(), StringComparison.Ordinal);
        var levelRows = Compare.Content(a, Compare.Load(a), b, Compare.Load(b)).Tables[1].Rows;
        Assert.Equal(["concurrency 2: output tok/s", "200", "400", "2.00x"], levelRows.Single(r => r[0] == "concurrency 2: output tok/s"));
        Assert.True(Synthetic.IsPng(File.ReadAllBytes(Path.Combine(report, "throughput.png"))));
        Assert.Contains("data:image/png;base64,", File.ReadAllText(Path.Combine(report, "report.html")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ \"completed\": 3,", "not valid JSON (line 1")]
    [InlineData("[1, 2]", "the top level is not an object")]
    [InlineData("{\"completed\": 1, \"failed\": 0, \"output_tokens_per_second\": 1, \"requests_per_second\": 1}", "no number at 'ttft_ms.p50'")]
    public async Task Malformed_compare_json_is_a_one_line_error_naming_the_file(string text, string fragment)
    {
        string good = Result("a.json", 1000, 10, 50, 0), bad = Path.Combine(_dir, "broken.json");
        await File.WriteAllTextAsync(bad, text);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        int rc = await LoadTestApp.RunAsync(["--compare", good, bad], stdout, stderr);
        Assert.Equal(2, rc);
        string error = stderr.ToString().TrimEnd();
        Assert.DoesNotContain('\n', error);
        Assert.Contains(bad, error, StringComparison.Ordinal);
        Assert.Contains(fragment, error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_compare_file_is_named()
    {
        string missing = Path.Combine(_dir, "nope.json");
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, await LoadTestApp.RunAsync(["--compare", missing, Result("b.json", 1, 1, 1, 0)], stdout, stderr));
        Assert.Equal($"strata-loadtest: --compare {missing}: no such file", stderr.ToString().TrimEnd());
    }

    [Fact]
    public async Task A_report_path_that_is_a_file_is_refused_before_anything_runs()
    {
        string a = Result("a.json", 1, 1, 1, 0), file = Result("b.json", 1, 1, 1, 0);
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        Assert.Equal(2, await LoadTestApp.RunAsync(["--compare", a, file, "--report", file], stdout, stderr));
        Assert.Contains($"--report {file} is a file", stderr.ToString(), StringComparison.Ordinal);
        Assert.Equal("", stdout.ToString());
    }

    [Fact]
    public void Compare_takes_no_load_flags()
    {
        var e = Assert.Throws<UsageException>(() => LoadTestOptions.Parse(["--compare", "a.json", "b.json", "--requests", "3"]));
        Assert.Contains("--compare", e.Message, StringComparison.Ordinal);
    }
}
