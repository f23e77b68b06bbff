namespace Strata.Engine.Sampling;

/// <summary>
/// The xoshiro256** generator (Blackman and Vigna, 2018), written out here so that a seed gives the same
/// stream on every .NET version and so that the 256-bit state can be saved and restored with a session.
/// Seeding expands a 64-bit seed with SplitMix64, as the authors recommend. Not thread-safe.
/// </summary>
public sealed class Xoshiro256StarStar
{
    /// <summary>Number of 64-bit words in the state.</summary>
    public const int StateLength = 4;

    private ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the generator from <paramref name="seed"/> through SplitMix64.</summary>
    public Xoshiro256StarStar(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>Restores a generator from a state taken with <see cref="GetState"/>.</summary>
    public Xoshiro256StarStar(ReadOnlySpan<ulong> state) => SetState(state);

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A copy of the state: <see cref="StateLength"/> words.</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>Replaces the state; it must be <see cref="StateLength"/> words, not all zero.</summary>
    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != StateLength)
            throw new ArgumentException($"xoshiro256** state must be {StateLength} words (got {state.Length})", nameof(state));
        if ((state[0] | state[1] | state[2] | state[3]) == 0)
            throw new ArgumentException("xoshiro256** state must not be all zero", nameof(state));
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
    }

    /// <summary>One step of SplitMix64, the seed expander.</summary>
    public static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
