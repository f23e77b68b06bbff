using System.Globalization;

namespace Strata.Models.Planning;

/// <summary>Byte counts for people, and sizes from people.</summary>
public static class ByteSize
{
    /// <summary>Formats bytes in decimal units (1 GB = 10^9 bytes), as device vendors label memory.</summary>
    public static string Format(long bytes)
    {
        double b = bytes;
        return Math.Abs(b) switch
        {
            >= 1e12 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e12:0.0} TB"),
            >= 1e9 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e9:0.0} GB"),
            >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e6:0.0} MB"),
            >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{b / 1e3:0.0} KB"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        };
    }

    /// <summary>
    /// Parses sizes like 512MB, 8GB, 1.5GiB or a plain byte count. KB/MB/GB/TB are read as binary units
    /// (1 GB = 2^30 bytes, as the silo's --memory flag has always meant); the error names <paramref name="setting"/>.
    /// </summary>
    public static long Parse(string text, string setting)
    {
        string t = text.Trim().ToUpperInvariant().Replace("IB", "B", StringComparison.Ordinal);
        (string Suffix, long Scale)[] units = [("TB", 1L << 40), ("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10), ("B", 1)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.Ordinal) &&
                double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v > 0)
                return (long)(v * scale);
        }
        if (long.TryParse(t, CultureInfo.InvariantCulture, out long bytes) && bytes > 0) return bytes;
        throw new FormatException($"{setting} '{text}' is not a size: use e.g. 512MB, 8GB or a byte count");
    }
}
