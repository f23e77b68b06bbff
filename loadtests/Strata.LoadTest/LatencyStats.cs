namespace Strata.LoadTest;

/// <summary>p50, p90, p99 and mean of a sample (milliseconds); all NaN-free zeros with <c>Count</c> 0 when empty.</summary>
internal sealed record LatencyStats(int Count, double P50, double P90, double P99, double Mean, double Max = 0)
{
    public static readonly LatencyStats Empty = new(0, 0, 0, 0, 0);

    public static LatencyStats Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return Empty;
        return new LatencyStats(sorted.Length,
            Percentiles.OfSorted(sorted, 50), Percentiles.OfSorted(sorted, 90), Percentiles.OfSorted(sorted, 99), sorted.Average(), sorted[^1]);
    }
}

/// <summary>Percentiles by linear interpolation between closest ranks (numpy's default, which vLLM's benchmark uses):
/// the p-th percentile of n sorted values sits at position h = (n - 1) * p / 100, between values floor(h) and
/// ceil(h), weighted by the fraction of h.</summary>
internal static class Percentiles
{
    public static double Of(IEnumerable<double> values, double p) => OfSorted(values.Order().ToArray(), p);

    public static double OfSorted(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) throw new ArgumentException("no values", nameof(sorted));
        if (p is < 0 or > 100) throw new ArgumentOutOfRangeException(nameof(p), p, "percentile must be within [0, 100]");
        double h = (sorted.Count - 1) * p / 100;
        int lo = (int)Math.Floor(h), hi = (int)Math.Ceiling(h);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
