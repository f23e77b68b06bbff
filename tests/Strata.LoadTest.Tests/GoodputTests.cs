namespace Strata.LoadTest.Tests;

public sealed class GoodputTests
{
    [Fact]
    public void Goodput_counts_completed_requests_meeting_every_target()
    {
        var requests = Synthetic.FiveRequests();
        // ttft <= 100 and tpot <= 50: the first (ttft exactly 100) and the one-token fifth meet both; the second
        // misses ttft, the third misses tpot, the fourth failed.
        var g = Goodput.Of(requests, 2.0, new SloTargets(TtftMs: 100, TpotMs: 50));
        Assert.Equal((2, 5), (g.Met, g.Sent));
        Assert.Equal(1.0, g.RequestsPerSecond, 9);
        Assert.Equal(0.4, g.Fraction, 9);

        // Adding e2e <= 100 leaves only the fifth (e2e 80; the first took 140).
        var strict = Goodput.Of(requests, 2.0, new SloTargets(TtftMs: 100, TpotMs: 50, E2EMs: 100));
        Assert.Equal(1, strict.Met);
        Assert.Equal(0.5, strict.RequestsPerSecond, 9);

        // A TPOT target alone: every completed request but the third.
        Assert.Equal(3, Goodput.Of(requests, 2.0, new SloTargets(TpotMs: 20)).Met);
    }

    [Fact]
    public void Report_summary_and_json_carry_goodput_only_when_a_target_is_given()
    {
        var o = LoadTestOptions.Parse(["--embedded", "--model-path", "x", "--slo-ttft-ms", "100", "--slo-tpot-ms", "50"]);
        var report = Synthetic.Report(o, 2.0, Synthetic.FiveRequests());
        var json = report.ToJson();
        var goodput = Assert.IsType<Dictionary<string, object>>(json["goodput"]);
        Assert.Equal(1.0, (double)goodput["requests_per_second"], 9);
        Assert.Equal(2, goodput["requests_meeting_slo"]);
        Assert.Equal(0.4, (double)goodput["fraction"], 9);
        var slo = Assert.IsType<Dictionary<string, object?>>(json["slo"]);
        Assert.Equal(100.0, slo["ttft_ms"]);
        Assert.Null(slo["e2e_ms"]);

        var summary = new StringWriter();
        report.WriteSummary(summary);
        Assert.Contains("ttft <= 100 ms, tpot <= 50 ms", summary.ToString(), StringComparison.Ordinal);
        Assert.Contains("2/5 (40.0%)", summary.ToString(), StringComparison.Ordinal);

        var plain = Synthetic.Report(LoadTestOptions.Parse(["--embedded", "--model-path", "x"]), 2.0, Synthetic.FiveRequests());
        Assert.Null(plain.ToJson()["goodput"]);
        Assert.Null(plain.Goodput);
    }

    [Fact]
    public void Concurrency_list_is_a_sweep()
    {
        var o = LoadTestOptions.Parse(["--concurrency", "1,2,4,8", "--embedded", "--model-path", "x"]);
        Assert.Equal([1, 2, 4, 8], o.Levels);
        Assert.Equal([3], LoadTestOptions.Parse(["--concurrency", "3", "--embedded", "--model-path", "x"]).Levels);
        Assert.Throws<UsageException>(() => LoadTestOptions.Parse(["--concurrency", "1,2,2", "--embedded", "--model-path", "x"]));
        Assert.Throws<UsageException>(() => LoadTestOptions.Parse(["--concurrency", "1,x", "--embedded", "--model-path", "x"]));
    }

    [Fact]
    public void Sweep_json_keeps_the_single_run_fields_of_its_highest_level_and_lists_every_level()
    {
        var o = LoadTestOptions.Parse(["--concurrency", "2,1", "--embedded", "--model-path", "x"]);
        var two = Synthetic.Report(o with { Concurrency = 2, Sweep = null }, 1.0, Synthetic.FiveRequests());
        var one = Synthetic.Report(o with { Concurrency = 1, Sweep = null }, 2.0, Synthetic.FiveRequests());
        var json = LoadTestApp.Json([two, one]);
        Assert.Equal(4.0, (double)json["requests_per_second"]!, 9); // level 2: 4 completed in 1 s
        Assert.Equal(2, ((Dictionary<string, object?>)json["settings"]!)["concurrency"]);
        var levels = Assert.IsType<Dictionary<string, object?>[]>(json["levels"]);
        Assert.Equal([2, 1], levels.Select(l => (int)((Dictionary<string, object?>)l["settings"]!)["concurrency"]!));
    }
}
