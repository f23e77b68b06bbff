namespace Strata.LoadTest;

/// <summary>What one request measured; times in milliseconds from the start of the run.</summary>
internal sealed class RequestResult
{
    public required int Index { get; init; }
    public double SentMs { get; set; }
    /// <summary>First chunk that carries a token, or null if none came.</summary>
    public double? FirstTokenMs { get; set; }
    /// <summary>Arrival of every chunk that carries tokens.</summary>
    public List<double> ChunkMs { get; } = [];
    /// <summary>Tokens each chunk of <see cref="ChunkMs"/> carried (same order and length).</summary>
    public List<int> ChunkTokens { get; } = [];
    public double EndMs { get; set; }
    public int OutputTokens { get; set; }
    public string? FinishReason { get; set; }
    /// <summary>Exception type and message; null when the request completed.</summary>
    public string? Error { get; set; }

    public bool Ok => Error is null;
    public double TtftMs => FirstTokenMs!.Value - SentMs;
    public double E2EMs => EndMs - SentMs;
    /// <summary>(E2E - TTFT) / (tokens - 1); null with fewer than 2 tokens.</summary>
    public double? TpotMs => OutputTokens > 1 && FirstTokenMs is not null ? (E2EMs - TtftMs) / (OutputTokens - 1) : null;
}
