using Strata.Contracts;

namespace Strata.LoadTest.Tests;

/// <summary>Hand-made requests and runs, so report numbers can be checked against hand-computed values.</summary>
internal static class Synthetic
{
    /// <summary>A request sent at <paramref name="sentMs"/> whose chunks (one token each unless given) arrived at
    /// <paramref name="chunkMs"/>; it ends with its last chunk.</summary>
    public static RequestResult Request(double sentMs, double[] chunkMs, int[]? tokens = null, string? error = null)
    {
        var r = new RequestResult { Index = 0, SentMs = sentMs, Error = error };
        r.ChunkMs.AddRange(chunkMs);
        r.ChunkTokens.AddRange(tokens ?? chunkMs.Select(_ => 1).ToArray());
        r.OutputTokens = r.ChunkTokens.Sum();
        r.FirstTokenMs = chunkMs.Length > 0 ? chunkMs[0] : null;
        r.EndMs = chunkMs.Length > 0 ? chunkMs[^1] : sentMs;
        return r;
    }

    public static LoadReport Report(LoadTestOptions options, double wallSeconds, params RequestResult[] requests) =>
        new(options, "tiny", 256,
            new ClusterShape("test", 1, new ModelStatus("tiny", DeploymentState.Ready, null, null, 64,
                [new StageStatus(0, 0, 2, "shard", "silo-a", "cpu", DeploymentState.Ready, null, 0, 4, 0, 0)]), null),
            new RunResult(requests, wallSeconds, "run1", 1_700_000_000_000));

    /// <summary>Five requests: TTFT 100/300/50/-/80 ms, TPOT 20/20/100/-/- ms, E2E 140/340/250/-/80 ms; the fourth
    /// failed, the fifth has one token.</summary>
    public static RequestResult[] FiveRequests() =>
    [
        Request(0, [100, 120, 140]),
        Request(0, [300, 320, 340]),
        Request(10, [60, 160, 260]),
        Request(0, [], error: "Timeout: no end within 1 s"),
        Request(0, [80]),
    ];

    public static bool IsPng(byte[] bytes) =>
        bytes.Length > 8 && bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A });
}
