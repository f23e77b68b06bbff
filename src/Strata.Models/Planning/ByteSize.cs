using System.Globalization;

namespace Strata.Models.Planning;

/// <summary>Byte counts for people: decimal units (1 GB = 10^9 bytes), as device vendors label memory.</summary>
internal static class ByteSize
{
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
}
