namespace Strata.LoadTest.Tests;

public sealed class LatencyStatsTests
{
    [Fact]
    public void Percentiles_interpolate_linearly_between_ranks()
    {
        double[] xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        // h = 9 * p / 100: p50 -> 4.5 (between 5 and 6), p90 -> 8.1, p99 -> 8.91
        Assert.Equal(5.5, Percentiles.Of(xs, 50), 9);
        Assert.Equal(9.1, Percentiles.Of(xs, 90), 9);
        Assert.Equal(9.91, Percentiles.Of(xs, 99), 9);
        Assert.Equal(1, Percentiles.Of(xs, 0));
        Assert.Equal(10, Percentiles.Of(xs, 100));
    }

    [Fact]
    public void Stats_sort_their_input_and_average_it()
    {
        var s = LatencyStats.Of([40, 10, 30, 20]);
        Assert.Equal(4, s.Count);
        Assert.Equal(25, s.P50, 9);          // h = 1.5
        Assert.Equal(37, s.P90, 9);          // h = 2.7 -> 30 + 0.7 * 10
        Assert.Equal(39.7, s.P99, 9);        // h = 2.97
        Assert.Equal(25, s.Mean, 9);
    }

    [Fact]
    public void One_value_is_every_percentile_and_none_is_empty()
    {
        var one = LatencyStats.Of([7]);
        Assert.Equal((7.0, 7.0, 7.0, 7.0), (one.P50, one.P90, one.P99, one.Mean));
        Assert.Equal(LatencyStats.Empty, LatencyStats.Of([]));
        Assert.Throws<ArgumentException>(() => Percentiles.Of([], 50));
    }

    [Fact]
    public void Poisson_arrivals_are_seeded_and_have_the_asked_rate()
    {
        var a = LoadRun.ArrivalOffsets(2000, 50, 7);
        Assert.Equal(a, LoadRun.ArrivalOffsets(2000, 50, 7));
        Assert.Equal(0, a[0]);
        Assert.InRange(a[^1] / 1999, 0.018, 0.022); // mean gap 1/50 s
        Assert.All(LoadRun.ArrivalOffsets(5, double.PositiveInfinity, 7), t => Assert.Equal(0, t));
    }

    [Fact]
    public void Prompts_are_seeded_ids_above_the_special_ones()
    {
        var p = LoadRun.Prompts(3, 16, 10, 5);
        Assert.Equal(p, LoadRun.Prompts(3, 16, 10, 5));
        Assert.All(p.SelectMany(x => x), id => Assert.InRange(id, 3, 9));
    }

    [Theory]
    [InlineData("--concurrency 2 --rate 3 --embedded --model-path x", "not both")]
    [InlineData("--concurrency 2 --model m", "exactly one target")]
    [InlineData("--embedded", "--model-path")]
    [InlineData("--gateway-port 30000", "--model NAME")]
    [InlineData("--rate -1 --gateway-port 30000 --model m", "--rate")]
    [InlineData("--bogus", "unknown flag")]
    public async Task Bad_flags_exit_2_with_a_message(string args, string fragment)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        int rc = await LoadTestApp.RunAsync(args.Split(' '), o, e);
        Assert.Equal(2, rc);
        Assert.Contains(fragment, e.ToString(), StringComparison.Ordinal);
    }
}
