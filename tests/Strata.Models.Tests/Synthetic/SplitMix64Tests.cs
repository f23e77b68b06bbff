using Strata.Models.Synthetic;

namespace Strata.Models.Tests.Synthetic;

public class SplitMix64Tests
{
    [Fact]
    public void Matches_the_reference_sequence()
    {
        // Reference values of SplitMix64 from state 0 (Vigna's splitmix64.c).
        var g = new SplitMix64(0);
        Assert.Equal(0xE220A8397B1DCDAFUL, g.Next());
        Assert.Equal(0x6E789E6AA1B965F4UL, g.Next());
        Assert.Equal(0x06C45D188009454FUL, g.Next());
    }

    [Fact]
    public void Normalish_values_have_unit_variance_and_streams_differ()
    {
        var g = SplitMix64.ForStream(7, "a");
        var v = Enumerable.Range(0, 200_000).Select(_ => (double)g.NextNormalish()).ToArray();
        double mean = v.Average();
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(v.Average(x => (x - mean) * (x - mean)), 0.98, 1.02);
        Assert.InRange(v.Max(), 3.0, 3.5);

        var u = SplitMix64.ForStream(7, "u");
        var s = Enumerable.Range(0, 100_000).Select(_ => u.NextSymmetric()).ToArray();
        Assert.All(s, x => Assert.InRange(x, -1f, 1f));
        Assert.NotEqual(SplitMix64.ForStream(7, "a").Next(), SplitMix64.ForStream(7, "b").Next());
        Assert.NotEqual(SplitMix64.ForStream(7, "a").Next(), SplitMix64.ForStream(8, "a").Next());
    }
}
