using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Strata.Grains;

/// <summary>
/// How long a session waits for a step before it calls the stage lost: <see cref="StrataSiloOptions.StepDeadlineFloor"/>
/// plus <see cref="StrataSiloOptions.StepDeadlineFactor"/> times the step time measured on this silo for the model
/// (a moving average, per token for multi-token steps), plus twice the longest recent prefill step (a step may wait
/// behind one at a stage). Far below Orleans' 30 s response timeout, so a killed silo
/// costs a session about a second, not half a minute. Before anything was measured the deadline is
/// <see cref="StrataSiloOptions.StepTimeout"/>. One per silo, shared by its sessions.
/// </summary>
public sealed class StepDeadlines(IOptions<StrataSiloOptions> options)
{
    private sealed class Averages
    {
        public double DecodeMs = double.NaN;
        public double PrefillMsPerToken = double.NaN;
        public double PrefillStepMs = double.NaN;
    }

    private readonly ConcurrentDictionary<string, Averages> _byModel = new(StringComparer.Ordinal);
    private const double Weight = 0.1;

    /// <summary>Records a step of <paramref name="tokens"/> tokens that took <paramref name="milliseconds"/>.</summary>
    public void Record(string model, int tokens, double milliseconds)
    {
        var a = _byModel.GetOrAdd(model, _ => new Averages());
        lock (a)
        {
            if (tokens <= 1) a.DecodeMs = double.IsNaN(a.DecodeMs) ? milliseconds : a.DecodeMs + Weight * (milliseconds - a.DecodeMs);
            else
            {
                double perToken = milliseconds / tokens;
                a.PrefillMsPerToken = double.IsNaN(a.PrefillMsPerToken) ? perToken : a.PrefillMsPerToken + Weight * (perToken - a.PrefillMsPerToken);
                // The longest recent prefill step, decaying: what a step may wait behind at a stage.
                a.PrefillStepMs = double.IsNaN(a.PrefillStepMs) ? milliseconds : Math.Max(milliseconds, a.PrefillStepMs * (1 - Weight));
            }
        }
    }

    /// <summary>The deadline of a step of <paramref name="tokens"/> tokens; <paramref name="slack"/> multiplies
    /// the measured part (a session doubles it after a false alarm).</summary>
    public TimeSpan For(string model, int tokens, double slack = 1)
    {
        var o = options.Value;
        if (!_byModel.TryGetValue(model, out var a)) return o.StepTimeout;
        double expected, chunkAhead;
        lock (a)
        {
            double decode = double.IsNaN(a.DecodeMs) ? 0 : a.DecodeMs;
            double perToken = double.IsNaN(a.PrefillMsPerToken) ? double.NaN : a.PrefillMsPerToken;
            if (tokens > 1 && double.IsNaN(perToken)) return o.StepTimeout;
            expected = decode + (tokens > 1 ? perToken * tokens : 0);
            // Any step may wait behind another session's prefill step at each stage: allow twice the longest recent one.
            chunkAhead = double.IsNaN(a.PrefillStepMs) ? 0 : 2 * a.PrefillStepMs;
        }
        var deadline = o.StepDeadlineFloor + TimeSpan.FromMilliseconds(o.StepDeadlineFactor * slack * expected + chunkAhead);
        return deadline < o.StepTimeout ? deadline : o.StepTimeout;
    }
}
