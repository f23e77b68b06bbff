namespace Strata.Contracts;

/// <summary>Sampling settings of a request (the seed travels separately as RNG state).</summary>
[GenerateSerializer, Immutable, Alias("strata.Sampling")]
public sealed record SamplingSpec(
    [property: Id(0)] double Temperature = 0,
    [property: Id(1)] int TopK = 0,
    [property: Id(2)] double TopP = 1.0);

/// <summary>One turn of a conversation: new text (or ids) appended to the session's history, then generation.</summary>
[GenerateSerializer, Immutable, Alias("strata.GenerateRequest")]
public sealed record GenerateRequest
{
    /// <summary>The model (the model grain's key). A session keeps the model of its first turn.</summary>
    [Id(0)] public required string Model { get; init; }
    /// <summary>Text appended to the conversation (the first turn gets BOS in front).</summary>
    [Id(1)] public string Prompt { get; init; } = "";
    /// <summary>Token ids to append instead of <see cref="Prompt"/> (no BOS added).</summary>
    [Id(2)] public int[]? PromptIds { get; init; }
    /// <summary>Most tokens to generate in this turn.</summary>
    [Id(3)] public int MaxNewTokens { get; init; } = 64;
    /// <summary>Sampling settings.</summary>
    [Id(4)] public SamplingSpec Sampling { get; init; } = new();
    /// <summary>Seed for this turn; null = keep the session's RNG stream (or a random seed on the first turn).</summary>
    [Id(5)] public ulong? Seed { get; init; }
    /// <summary>Text that ends generation (not included).</summary>
    [Id(6)] public string[] StopStrings { get; init; } = [];
    /// <summary>Extra stop ids besides the model's EOS ids.</summary>
    [Id(7)] public int[] StopIds { get; init; } = [];
    /// <summary>Keep generating past the model's EOS ids (benchmarks; as vLLM's ignore_eos). Explicit
    /// <see cref="StopIds"/> and <see cref="StopStrings"/> still stop.</summary>
    [Id(8)] public bool IgnoreEos { get; init; }
    /// <summary>Continues a turn whose stream broke (its session grain's silo was lost): the same request again, with
    /// what the client had received. Set by <c>StrataClient</c>; applications leave it null.</summary>
    [Id(9)] public TurnResume? Resume { get; init; }
    /// <summary>Chat messages rendered into this turn's prompt by the model's chat template (with the header that
    /// starts the assistant's reply) instead of <see cref="Prompt"/>. A model without a template refuses them.</summary>
    [Id(10)] public ChatTurn[]? Messages { get; init; }
}

/// <summary>One chat message: its role (<c>system</c>, <c>user</c>, <c>assistant</c>, ...) and its text.</summary>
[GenerateSerializer, Immutable, Alias("strata.ChatTurn")]
public sealed record ChatTurn(
    [property: Id(0)] string Role,
    [property: Id(1)] string Content);

/// <summary>Who a call is made for: the gateway sets <see cref="Key"/> in the Orleans request context to the name of
/// the API key it authenticated, and a session belongs to the caller of its first turn. A caller that names
/// another owner is told the session does not exist. Calls that name no owner (trusted cluster clients such as the
/// command line, admitted by the cluster's certificate when TLS is on) are not checked.</summary>
public static class CallerContext
{
    /// <summary>The request-context key that holds the caller's name.</summary>
    public const string Key = "strata-owner";
}

/// <summary>Where a broken turn stood for the client: the turn (from the first chunk's <see cref="TurnInfo"/>), the
/// tokens it received and the RNG state after the last of them.</summary>
[GenerateSerializer, Immutable, Alias("strata.TurnResume")]
public sealed record TurnResume(
    [property: Id(0)] long Turn,
    [property: Id(1)] int HistoryStart,
    [property: Id(2)] int[] Received,
    [property: Id(3)] ulong[]? RngState);

/// <summary>Which turn a stream belongs to: the session's count of completed turns when it began, and the length of
/// the history before its prompt.</summary>
[GenerateSerializer, Immutable, Alias("strata.TurnInfo")]
public sealed record TurnInfo(
    [property: Id(0)] long Turn,
    [property: Id(1)] int HistoryStart);

/// <summary>Tokens counted for a turn.</summary>
[GenerateSerializer, Immutable, Alias("strata.Usage")]
public sealed record Usage(
    [property: Id(0)] int PromptTokens,
    [property: Id(1)] int CompletionTokens,
    [property: Id(2)] int CachedTokens);

/// <summary>A piece of the stream: text that is complete, the ids it came from, and on the last chunk the reason
/// and usage. The first chunk carries the turn (<see cref="Turn"/>) and every chunk the RNG state after its token,
/// so that a client can resume the turn where it broke.</summary>
[GenerateSerializer, Immutable, Alias("strata.GenerateChunk")]
public sealed record GenerateChunk(
    [property: Id(0)] string Text,
    [property: Id(1)] int[] TokenIds,
    [property: Id(2)] string? FinishReason = null,
    [property: Id(3)] Usage? Usage = null,
    [property: Id(4)] int[]? PromptIds = null,
    [property: Id(5)] ulong[]? RngState = null,
    [property: Id(6)] TurnInfo? Turn = null);

/// <summary>What a session holds; <see cref="GeneratingTurn"/> is the turn it is generating (its
/// <see cref="TurnInfo.Turn"/>), or null between turns.</summary>
[GenerateSerializer, Immutable, Alias("strata.SessionInfo")]
public sealed record SessionInfo(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string? Model,
    [property: Id(2)] int HistoryTokens,
    [property: Id(3)] int CachedTokens,
    [property: Id(4)] bool HoldsKv,
    [property: Id(5)] long? GeneratingTurn = null);

/// <summary>A conversation: its token history, sampling state and KV leases at every stage.</summary>
[Alias("strata.ISessionGrain")]
public interface ISessionGrain : IGrainWithStringKey
{
    /// <summary>Appends the request's prompt and streams the continuation. Cancelling stops generation and frees the
    /// KV at every stage.</summary>
    [Alias("Generate")]
    IAsyncEnumerable<GenerateChunk> GenerateAsync(GenerateRequest request, CancellationToken cancellation = default);

    /// <summary>History and cache state.</summary>
    [Alias("GetInfo")]
    Task<SessionInfo> GetInfo();

    /// <summary>Frees the KV at every stage; the history is kept (a later turn rebuilds the cache).</summary>
    [Alias("ReleaseKv")]
    Task ReleaseKv();

    /// <summary>Ends the conversation: stops a running turn, frees the KV at every stage, deletes the stored state.</summary>
    [Alias("Close")]
    Task Close();

    /// <summary>
    /// Asks a running turn to leave the shards <paramref name="leaving"/> (a drain or scale-down that has already
    /// taken them out of the deployment): before its next step the session takes a route without them, replays its
    /// history there, and gives back its slots on them once the first step on the new route has returned; until
    /// then the old route still serves. Returns whether a move was scheduled (false: no turn is running on them).
    /// Returns at once; the caller sees the move done when the shards no longer list the session as running.
    /// </summary>
    [Alias("Move"), Orleans.Concurrency.AlwaysInterleave]
    Task<bool> Move(string[] leaving);
}
