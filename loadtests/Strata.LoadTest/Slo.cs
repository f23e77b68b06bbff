using System.Globalization;

namespace Strata.LoadTest;

/// <summary>Latency targets a request must meet to count towards goodput (milliseconds; null = no target on that
/// metric). A request meets a target when its value is at most the target, as vLLM's benchmark counts it.</summary>
internal sealed record SloTargets(double? TtftMs = null, double? TpotMs = null, double? E2EMs = null)
{
    public static readonly SloTargets None = new();

    public bool Any => TtftMs is not null || TpotMs is not null || E2EMs is not null;

    /// <summary>Whether a request completed and met every given target. A request of one token has no TPOT and
    /// meets a TPOT target (vLLM counts its TPOT as 0).</summary>
    public bool Met(RequestResult r) =>
        r.Ok && r.FirstTokenMs is not null
        && (TtftMs is not { } ttft || r.TtftMs <= ttft)
        && (TpotMs is not { } tpot || (r.TpotMs ?? 0) <= tpot)
        && (E2EMs is not { } e2e || r.E2EMs <= e2e);

    /// <summary>The targets as text, such as "ttft &lt;= 200 ms, tpot &lt;= 50 ms"; "none" without targets.</summary>
    public string Describe()
    {
        var parts = new List<string>();
        if (TtftMs is { } a) parts.Add(string.Create(CultureInfo.InvariantCulture, $"ttft <= {a:G} ms"));
        if (TpotMs is { } b) parts.Add(string.Create(CultureInfo.InvariantCulture, $"tpot <= {b:G} ms"));
        if (E2EMs is { } c) parts.Add(string.Create(CultureInfo.InvariantCulture, $"e2e <= {c:G} ms"));
        return parts.Count == 0 ? "none" : string.Join(", ", parts);
    }
}

/// <summary>Goodput: the completed requests that met every target, per second of the run's wall time, and as a
/// fraction of every request sent (a failed request never meets a target).</summary>
internal sealed record Goodput(int Met, int Sent, double RequestsPerSecond)
{
    public double Fraction => Sent == 0 ? 0 : (double)Met / Sent;

    public static Goodput Of(IReadOnlyList<RequestResult> requests, double wallSeconds, SloTargets slo)
    {
        int met = requests.Count(slo.Met);
        return new Goodput(met, requests.Count, met / Math.Max(1e-9, wallSeconds));
    }
}
