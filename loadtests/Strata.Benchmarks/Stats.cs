namespace Strata.Benchmarks;

/// <summary>Summary statistics of repeated measurements.</summary>
internal static class Stats
{
    /// <summary>The median (the mean of the two middle values for an even count).</summary>
    public static double Median(IReadOnlyCollection<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>Measures <paramref name="configurations"/> configurations in interleaved rounds, so that machine noise
    /// hits all of them alike: one warm-up round, then <paramref name="rounds"/> rounds whose results are kept, one
    /// list per configuration.</summary>
    public static List<double>[] Interleaved(int configurations, int rounds, Func<int, double> measure)
    {
        var samples = Enumerable.Range(0, configurations).Select(_ => new List<double>()).ToArray();
        for (int round = -1; round < rounds; round++) // round -1 warms up
        {
            for (int c = 0; c < configurations; c++)
            {
                double value = measure(c);
                if (round >= 0) samples[c].Add(value);
            }
        }
        return samples;
    }
}
