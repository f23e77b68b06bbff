using System.Globalization;

namespace Strata.Cli;

/// <summary>
/// Progress of long work on stderr: a redrawn bar on a terminal, a line per 10% when redirected (logs, CI).
/// </summary>
public sealed class ProgressBar(TextWriter err, string label, bool interactive)
{
    private int _lastDecile = -1;
    private double _lastDrawn = -1;

    /// <summary>Shows <paramref name="fraction"/> (0..1) with an optional detail.</summary>
    public void Report(double fraction, string? detail = null)
    {
        fraction = Math.Clamp(fraction, 0, 1);
        if (interactive)
        {
            if (fraction - _lastDrawn < 0.002 && fraction < 1) return;
            _lastDrawn = fraction;
            int filled = (int)(fraction * 30);
            string text = string.Create(CultureInfo.InvariantCulture,
                $"\r{label} [{new string('#', filled)}{new string(' ', 30 - filled)}] {fraction * 100,5:F1}% {Trim(detail)}");
            err.Write(text.PadRight(100));
            if (fraction >= 1) err.WriteLine();
        }
        else
        {
            int decile = (int)(fraction * 10);
            if (decile == _lastDecile) return;
            _lastDecile = decile;
            err.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: {decile * 10}% {Trim(detail)}"));
        }
    }

    private static string Trim(string? s) => s is null ? "" : s.Length > 40 ? "…" + s[^39..] : s;
}
