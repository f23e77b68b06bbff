using Strata.Engine.Sampling;

namespace Strata.Engine.Tests.Sampling;

public sealed class Xoshiro256StarStarTests
{
    [Fact]
    public void Matches_the_reference_implementation()
    {
        // Outputs of the authors' xoshiro256starstar.c from state {1, 2, 3, 4}.
        var rng = new Xoshiro256StarStar([1UL, 2UL, 3UL, 4UL]);
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        Assert.Equal(1215971899390074240UL, rng.NextUInt64());

        ulong x = 0;
        Assert.Equal(0xE220A8397B1DCDAFUL, Xoshiro256StarStar.SplitMix64(ref x));
    }

    [Fact]
    public void State_round_trips_and_bad_states_are_rejected()
    {
        var a = new Xoshiro256StarStar(123);
        a.NextUInt64();
        var b = new Xoshiro256StarStar(a.GetState());
        for (int i = 0; i < 10; i++) Assert.Equal(a.NextUInt64(), b.NextUInt64());
        Assert.InRange(a.NextDouble(), 0.0, 1.0);

        Assert.Throws<ArgumentException>(() => new Xoshiro256StarStar(new ulong[4]));
        Assert.Throws<ArgumentException>(() => new Xoshiro256StarStar(new ulong[] { 1, 2, 3 }));
    }
}
