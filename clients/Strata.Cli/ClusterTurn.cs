using System.Diagnostics;
using System.Globalization;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Cli;

/// <summary>What one streamed turn of a cluster session produced.</summary>
/// <param name="PromptIds">The ids the turn appended (the first chunk's <c>PromptIds</c>).</param>
/// <param name="GeneratedIds">Every generated id, the stop id included when one ended the turn.</param>
/// <param name="Text">The continuation.</param>
/// <param name="StopReason">The last chunk's finish reason: stop or length.</param>
/// <param name="FirstToken">Time from the request to the first chunk.</param>
/// <param name="Elapsed">Time from the request to the last chunk.</param>
internal sealed record TurnResult(int[] PromptIds, int[] GeneratedIds, string Text, string StopReason, TimeSpan FirstToken, TimeSpan Elapsed)
{
    /// <summary>Decode speed: tokens after the first over the time after the first.</summary>
    public double DecodeTokensPerSecond
    {
        get
        {
            double seconds = (Elapsed - FirstToken).TotalSeconds;
            return seconds > 0 ? Math.Max(0, GeneratedIds.Length - 1) / seconds : 0;
        }
    }

    /// <summary>One line for stderr: token counts, latency, speed, stop reason.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"{PromptIds.Length} prompt tokens, {GeneratedIds.Length} generated; first token {FirstToken.TotalMilliseconds:F0} ms; " +
        $"decode {DecodeTokensPerSecond:F1} tok/s; stop: {StopReason}");
}

/// <summary>Streams one turn of a session and collects it.</summary>
internal static class ClusterTurn
{
    /// <summary>Runs <paramref name="request"/> on session <paramref name="sessionId"/>, handing each piece of text to
    /// <paramref name="onText"/> as it arrives. Cancelling stops the stream (the session frees its KV).</summary>
    public static async Task<TurnResult> StreamAsync(StrataClient client, string sessionId, GenerateRequest request,
        Action<string>? onText, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan? first = null;
        int[]? promptIds = null;
        var generated = new List<int>();
        var text = new System.Text.StringBuilder();
        string? finish = null;
        await foreach (var chunk in client.GenerateAsync(sessionId, request, cancellation))
        {
            first ??= clock.Elapsed;
            promptIds ??= chunk.PromptIds;
            generated.AddRange(chunk.TokenIds);
            text.Append(chunk.Text);
            if (chunk.FinishReason is not null) finish = chunk.FinishReason;
            if (chunk.Text.Length > 0) onText?.Invoke(chunk.Text);
        }
        clock.Stop();
        return new TurnResult(promptIds ?? [], generated.ToArray(), text.ToString(),
            finish ?? throw new StrataException(ErrorCodes.StageFailed, $"the stream of session {sessionId} ended without a finish reason"),
            first ?? clock.Elapsed, clock.Elapsed);
    }

    /// <summary>Frees the session's KV at every stage (its history stays: a later turn rebuilds the cache). A session
    /// otherwise holds a slot per stage until its idle timeout, and one-shot commands would fill the slots.</summary>
    public static Task ReleaseAsync(StrataClient client, string sessionId) =>
        client.Orleans.GetGrain<ISessionGrain>(sessionId).ReleaseKv();

    /// <summary><see cref="ReleaseAsync"/> on the way out (also after Ctrl+C or a failure): best effort, never throws;
    /// the session's idle timeout frees what this could not.</summary>
    public static async Task TryReleaseAsync(StrataClient client, string sessionId)
    {
        try
        {
            await ReleaseAsync(client, sessionId).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The cluster is gone or slow; nothing more to do here.
        }
    }

    /// <summary>A fresh session id for a command that was given none.</summary>
    public static string NewSessionId() => "cli-" + Guid.NewGuid().ToString("N")[..16];
}
