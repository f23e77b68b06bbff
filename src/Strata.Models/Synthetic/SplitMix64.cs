namespace Strata.Models.Synthetic;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast generator whose output is fixed by its definition,
/// unlike <see cref="System.Random"/>, whose algorithm may change between runtime versions. Synthetic weights
/// must be byte-identical forever for a given seed, so they come from here.
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    /// <summary>Starts the sequence at <paramref name="seed"/>.</summary>
    public SplitMix64(ulong seed) => _state = seed;

    /// <summary>A generator for one named stream (e.g. one tensor) of a seeded family.</summary>
    public static SplitMix64 ForStream(ulong seed, string name)
    {
        // FNV-1a over the UTF-16 code units, then mixed with the seed, so every tensor gets its own stream.
        ulong h = 14695981039346656037UL;
        foreach (char c in name)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        var g = new SplitMix64(seed ^ Mix(h));
        g.Next();
        return g;
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A uniform value in [-1, 1).</summary>
    public float NextSymmetric() => (float)((long)(Next() >> 40) - (1L << 23)) / (1 << 23);

    /// <summary>
    /// A bell-shaped value with mean 0 and variance 1 (Irwin-Hall: the sum of four 16-bit uniforms from one draw),
    /// bounded to about +-3.5: close enough to a normal for initialisation, and one draw per value.
    /// </summary>
    public float NextNormalish()
    {
        ulong r = Next();
        int sum = (int)(r & 0xFFFF) + (int)((r >> 16) & 0xFFFF) + (int)((r >> 32) & 0xFFFF) + (int)(r >> 48);
        // Four uniforms on [0, 65535] sum to mean 131070 and standard deviation about 65536 / sqrt(3).
        const float scale = 1.7320508f / 65536f;
        return (sum - 131070f) * scale;
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
