using System.Text.Json;
using Strata.Cli;
using Strata.Client;
using Strata.Contracts;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.LoadTest.Tests;

public sealed class EmbeddedRunTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-loadtest-test-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public async Task Embedded_closed_loop_run_completes_every_request_and_writes_json()
    {
        string src = Path.Combine(_dir, "src"), pkg = Path.Combine(_dir, "pkg"), json = Path.Combine(_dir, "out", "run.json");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = 2 }, src);
        ModelImporter.Import(src, pkg);

        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        string[] args = ["--embedded", "--model-path", pkg, "--stages", "2", "--concurrency", "2", "--requests", "4",
            "--prompt-tokens", "8", "--max-new-tokens", "4", "--json", json, "--timeout", "60"];
        int rc = await Task.Run(() => LoadTestApp.RunAsync(args, stdout, stderr)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(rc == 0, $"exit {rc}\n{stdout}\n{stderr}");

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var root = doc.RootElement;
        Assert.Equal(4, root.GetProperty("completed").GetInt32());
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
        Assert.Equal(16, root.GetProperty("total_output_tokens").GetInt64());
        Assert.True(root.GetProperty("output_tokens_per_second").GetDouble() > 0);
        Assert.True(root.GetProperty("requests_per_second").GetDouble() > 0);
        foreach (var metric in new[] { "ttft_ms", "e2e_ms", "tpot_ms", "itl_ms" })
        {
            var m = root.GetProperty(metric);
            foreach (var p in new[] { "p50", "p90", "p99", "mean" }) Assert.True(m.TryGetProperty(p, out _), $"{metric}.{p}");
        }
        // The largest inter-token gap of each request: one per request, none below the smallest pooled gap.
        var maxItl = root.GetProperty("max_itl_ms");
        Assert.Equal(4, maxItl.GetProperty("count").GetInt32());
        Assert.True(maxItl.GetProperty("max").GetDouble() >= maxItl.GetProperty("p99").GetDouble());
        Assert.True(maxItl.GetProperty("max").GetDouble() >= root.GetProperty("itl_ms").GetProperty("p99").GetDouble() * 0.999);
        Assert.Equal(4, root.GetProperty("ttft_ms").GetProperty("count").GetInt32());
        Assert.True(root.GetProperty("ttft_ms").GetProperty("p50").GetDouble() > 0);
        Assert.True(root.GetProperty("e2e_ms").GetProperty("p50").GetDouble() >= root.GetProperty("ttft_ms").GetProperty("p50").GetDouble());
        Assert.Equal(2, root.GetProperty("cluster").GetProperty("stages").GetInt32());
        Assert.Equal(2, root.GetProperty("settings").GetProperty("concurrency").GetInt32());

        string summary = stdout.ToString();
        Assert.Contains("completed", summary, StringComparison.Ordinal);
        Assert.Contains("ttft", summary, StringComparison.Ordinal);
        Assert.Contains("output throughput", summary, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Embedded_sweep_runs_every_level_and_writes_the_report()
    {
        string src = Path.Combine(_dir, "src"), pkg = Path.Combine(_dir, "pkg"), json = Path.Combine(_dir, "sweep.json"), report = Path.Combine(_dir, "report");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = 2 }, src);
        ModelImporter.Import(src, pkg);

        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        // A target no request can miss: goodput is then every completed request.
        string[] args = ["--embedded", "--model-path", pkg, "--stages", "2", "--concurrency", "1,2", "--requests", "2",
            "--prompt-tokens", "8", "--max-new-tokens", "3", "--slo-ttft-ms", "600000", "--json", json, "--report", report, "--timeout", "60"];
        int rc = await Task.Run(() => LoadTestApp.RunAsync(args, stdout, stderr)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(rc == 0, $"exit {rc}\n{stdout}\n{stderr}");

        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        var levels = doc.RootElement.GetProperty("levels").EnumerateArray().ToArray();
        Assert.Equal([1, 2], levels.Select(l => l.GetProperty("settings").GetProperty("concurrency").GetInt32()));
        Assert.All(levels, l => Assert.Equal(2, l.GetProperty("completed").GetInt32()));
        Assert.All(levels, l => Assert.Equal(1.0, l.GetProperty("goodput").GetProperty("fraction").GetDouble()));
        Assert.Equal(2, doc.RootElement.GetProperty("settings").GetProperty("concurrency").GetInt32());

        Assert.Contains("concurrency sweep", stdout.ToString(), StringComparison.Ordinal);
        Assert.True(Synthetic.IsPng(await File.ReadAllBytesAsync(Path.Combine(report, "throughput.png"))));
        string html = await File.ReadAllTextAsync(Path.Combine(report, "report.html"));
        Assert.Contains("data:image/png;base64,", html, StringComparison.Ordinal);
        Assert.Contains("2/2 (100.0%)", html, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(report, "report.md")));
    }

    [Fact]
    public async Task Rate_run_against_a_running_cluster_by_gateway_port()
    {
        string src = Path.Combine(_dir, "src"), pkg = Path.Combine(_dir, "pkg"), json = Path.Combine(_dir, "rate.json");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = 2 }, src);
        ModelImporter.Import(src, pkg);
        await using var cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions { Silos = 2, ModelStore = _dir, ClusterId = "lt-remote" });
        await using (var client = await StrataClient.ConnectAsync(null, cluster.GatewayPorts.ToArray(), cluster.ClusterId))
            await client.DeployAsync("tiny", new DeployRequest(pkg, 2, 64, MaxSessions: 6), timeout: TimeSpan.FromMinutes(1));

        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        string[] args = ["--gateway-port", string.Join(",", cluster.GatewayPorts), "--cluster-id", cluster.ClusterId, "--model", "tiny",
            "--rate", "50", "--requests", "6", "--prompt-tokens", "8", "--max-new-tokens", "3", "--json", json, "--timeout", "60"];
        int rc = await Task.Run(() => LoadTestApp.RunAsync(args, stdout, stderr)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(rc == 0, $"exit {rc}\n{stdout}\n{stderr}");
        using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
        Assert.Equal(6, doc.RootElement.GetProperty("completed").GetInt32());
        Assert.Equal(18, doc.RootElement.GetProperty("total_output_tokens").GetInt64());
        Assert.Equal("poisson", doc.RootElement.GetProperty("settings").GetProperty("arrivals").GetString());
        Assert.Contains("Poisson, 50 requests/s", stdout.ToString(), StringComparison.Ordinal);
    }
}
