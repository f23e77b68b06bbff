using System.Text;

namespace Strata.Engine.Sampling;

/// <summary>Finish reasons, spelled as the OpenAI API spells them.</summary>
public static class FinishReasons
{
    /// <summary>A stop token id or stop string ended the generation.</summary>
    public const string Stop = "stop";
    /// <summary>The generation reached its token limit.</summary>
    public const string Length = "length";
}

/// <summary>What <see cref="StopChecker.Append"/> decided for one token.</summary>
/// <param name="Text">Text that is now safe to send to the client (possibly empty).</param>
/// <param name="FinishReason">Null while generation goes on, else <see cref="FinishReasons.Stop"/> or <see cref="FinishReasons.Length"/>.</param>
/// <param name="StopString">The stop string that matched, if one did.</param>
/// <param name="StopId">The stop token id that matched, if one did.</param>
public readonly record struct StopDecision(string Text, string? FinishReason, string? StopString = null, int? StopId = null)
{
    /// <summary>Whether generation must end after this token.</summary>
    public bool IsStopped => FinishReason is not null;
}

/// <summary>
/// Decides, token by token, when a generation stops, and what text may be streamed so far.
/// It sees only token ids and the text each token added (from whatever detokenizer the caller uses).
/// </summary>
/// <remarks>
/// <para>Stop ids: the token that matches is counted but its text is not emitted.</para>
/// <para>Stop strings: the text is searched as a whole, so a stop string split across tokens
/// ("The e" + "nd.") is found. Text that could still be the start of a stop string is held back: after
/// each token the checker emits everything except the longest suffix that is a proper prefix of some stop
/// string. A stop string can therefore only begin inside the held-back text, and is never partly emitted.
/// On a match, text before the stop string is emitted and the string and everything after it are dropped.</para>
/// <para>Length: when <c>maxNewTokens</c> tokens have been appended without another stop, all held text is
/// emitted and the reason is <see cref="FinishReasons.Length"/>. A stop on the last token reports "stop".</para>
/// </remarks>
public sealed class StopChecker
{
    private readonly HashSet<int> _stopIds;
    private readonly string[] _stopStrings;
    private readonly int _maxNewTokens;
    private readonly StringBuilder _pending = new(); // text received but not yet emitted

    /// <summary>Creates a checker for the given stops and token limit.</summary>
    public StopChecker(IReadOnlyList<int> stopIds, IReadOnlyList<string> stopStrings, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(stopIds);
        ArgumentNullException.ThrowIfNull(stopStrings);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxNewTokens);
        if (stopStrings.Any(string.IsNullOrEmpty))
            throw new ArgumentException("stop strings must be non-empty", nameof(stopStrings));
        _stopIds = [.. stopIds];
        _stopStrings = [.. stopStrings];
        _maxNewTokens = maxNewTokens;
    }

    /// <summary>A checker for the stops and limit of <paramref name="parameters"/>.</summary>
    public static StopChecker For(SamplingParams parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return new(parameters.StopIds, parameters.StopStrings, parameters.MaxNewTokens);
    }

    /// <summary>Tokens appended so far.</summary>
    public int Generated { get; private set; }

    /// <summary>Whether a stop has been reached; no more tokens may be appended.</summary>
    public bool IsStopped { get; private set; }

    /// <summary>Text received but held back because it may begin a stop string.</summary>
    public string HeldBack => _pending.ToString();

    /// <summary>Records one generated token and the text it added; says what to emit and whether to stop.</summary>
    public StopDecision Append(int tokenId, string textDelta)
    {
        ArgumentNullException.ThrowIfNull(textDelta);
        if (IsStopped)
            throw new InvalidOperationException("the generation has already stopped; start a new StopChecker");
        Generated++;

        if (_stopIds.Contains(tokenId))
            return Finish(FlushPending(), FinishReasons.Stop, stopId: tokenId);

        _pending.Append(textDelta);
        string text = _pending.ToString();
        if (FindStopString(text) is (int at, string stop))
        {
            _pending.Clear();
            return Finish(text[..at], FinishReasons.Stop, stopString: stop);
        }
        if (Generated >= _maxNewTokens)
            return Finish(FlushPending(), FinishReasons.Length);

        int hold = HoldBackLength(text);
        _pending.Clear().Append(text, text.Length - hold, hold);
        return new StopDecision(text[..^hold], null);
    }

    /// <summary>Ends the stream early (cancellation, error): returns the held-back text and clears it.</summary>
    public string Flush() => FlushPending();

    private StopDecision Finish(string text, string reason, string? stopString = null, int? stopId = null)
    {
        IsStopped = true;
        return new StopDecision(text, reason, stopString, stopId);
    }

    private string FlushPending()
    {
        string text = _pending.ToString();
        _pending.Clear();
        return text;
    }

    /// <summary>The earliest occurrence of any stop string (the first listed wins a tie), or null.</summary>
    private (int At, string Stop)? FindStopString(string text)
    {
        (int At, string Stop)? best = null;
        foreach (string stop in _stopStrings)
        {
            int at = text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (best is null || at < best.Value.At)) best = (at, stop);
        }
        return best;
    }

    /// <summary>The length of the longest suffix of <paramref name="text"/> that is a proper prefix of a stop string.</summary>
    private int HoldBackLength(string text)
    {
        int hold = 0;
        foreach (string stop in _stopStrings)
        {
            for (int len = Math.Min(stop.Length - 1, text.Length); len > hold; len--)
            {
                if (text.AsSpan(text.Length - len).SequenceEqual(stop.AsSpan(0, len)))
                {
                    hold = len;
                    break;
                }
            }
        }
        return hold;
    }
}
