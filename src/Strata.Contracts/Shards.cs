namespace Strata.Contracts;

/// <summary>What one shard serves. Where its output goes is not part of it: each step carries its route, so one
/// shard serves every route (replica combination, re-plan) that passes through it.</summary>
[GenerateSerializer, Immutable, Alias("strata.ShardConfig")]
public sealed record ShardConfig(
    [property: Id(0)] string Model,
    [property: Id(1)] string PackagePath,
    [property: Id(2)] int StageIndex,
    [property: Id(3)] int FirstLayer,
    [property: Id(4)] int EndLayer,
    [property: Id(5)] int TotalLayers,
    [property: Id(7)] int MaxContext,
    [property: Id(8)] int Slots,
    [property: Id(9)] int? AdmissionQueue = null,
    [property: Id(10)] TimeSpan? AdmissionWait = null,
    [property: Id(11)] int Stages = 0,
    [property: Id(12)] string? KvDtype = null);

/// <summary>One step of one session through a shard. The first stage gets <see cref="Tokens"/>; later stages get
/// <see cref="Hidden"/> ([tokens, hidden] elements of <see cref="HiddenType"/> as bytes). <see cref="FillOnly"/>
/// marks a part of a long prompt: the stages cache it, the last one samples nothing (token -1, RNG untouched).
/// <see cref="Route"/> lists the shard of every stage the step goes through (index = stage); a shard passes its output
/// to the next entry. <see cref="TraceParent"/> is the W3C trace context of the sending stage's span when the step is
/// traced and travels in a <see cref="IShardGrain.StepBatch"/> with others (one call carries one context; each step
/// keeps its own trace).</summary>
[GenerateSerializer, Immutable, Alias("strata.StepRequest")]
public sealed record StepRequest(
    [property: Id(0)] string SessionId,
    [property: Id(1)] int PastLength,
    [property: Id(2)] int TokenCount,
    [property: Id(3)] int[]? Tokens,
    [property: Id(4)] byte[]? Hidden,
    [property: Id(5)] string HiddenType,
    [property: Id(6)] SamplingSpec Sampling,
    [property: Id(7)] ulong[] RngState,
    [property: Id(8)] long Epoch = 0,
    [property: Id(9)] bool FillOnly = false,
    [property: Id(10)] IReadOnlyList<string>? Route = null,
    [property: Id(11)] string? TraceParent = null);

/// <summary>The outcome of one step of a <see cref="IShardGrain.StepBatch"/>: its result, or the typed error that
/// step alone failed with (<see cref="StrataException.Code"/> and message); the other steps of the batch go on.</summary>
[GenerateSerializer, Immutable, Alias("strata.StepReply")]
public sealed record StepReply(
    [property: Id(0)] StepResult? Result,
    [property: Id(1)] string? ErrorCode = null,
    [property: Id(2)] string? Error = null);

/// <summary>The sampled token and the RNG state after sampling (the session keeps it).</summary>
[GenerateSerializer, Immutable, Alias("strata.StepResult")]
public sealed record StepResult(
    [property: Id(0)] int Token,
    [property: Id(1)] ulong[] RngState,
    [property: Id(2)] double[] StageMilliseconds);

/// <summary>Cached positions of one session at one stage, copied between shards of the same stage (a drain moves a
/// session's KV instead of replaying its history): every layer's keys then values, each head's positions in order,
/// <see cref="Positions"/> positions of <see cref="ElementSize"/>-byte elements, for layers
/// [<see cref="FirstLayer"/>, <see cref="EndLayer"/>).</summary>
[GenerateSerializer, Immutable, Alias("strata.KvChunk")]
public sealed record KvChunk(
    [property: Id(0)] int FirstLayer,
    [property: Id(1)] int EndLayer,
    [property: Id(2)] int ElementSize,
    [property: Id(3)] int Positions,
    [property: Id(4)] byte[] Data);

/// <summary>A shard's load state and KV use.</summary>
[GenerateSerializer, Immutable, Alias("strata.ShardStatus")]
public sealed record ShardStatus(
    [property: Id(0)] DeploymentState State,
    [property: Id(1)] string? Error,
    [property: Id(2)] string Silo,
    [property: Id(3)] string Device,
    [property: Id(4)] int ActiveSessions,
    [property: Id(5)] int Slots,
    [property: Id(6)] long WeightBytes,
    [property: Id(7)] long KvBytes,
    [property: Id(8)] int WaitingSessions = 0,
    [property: Id(9)] int QueuedSteps = 0);

/// <summary>A stage of a deployed model, pinned to the silo the plan chose.</summary>
[Alias("strata.IShardGrain")]
public interface IShardGrain : IGrainWithStringKey
{
    /// <summary>Starts loading the stage in the background (idempotent for the same config).</summary>
    [Alias("Configure"), ResponseTimeout("00:05:00")]
    Task<ShardStatus> Configure(ShardConfig config);

    /// <summary>Load state and KV use.</summary>
    [Alias("GetStatus")]
    Task<ShardStatus> GetStatus();

    /// <summary>Reserves a KV slot for a session's turn <paramref name="epoch"/> (its steps carry the same epoch),
    /// waiting in the stage's bounded queue while every slot is held by a running session. Returns true when the session already held its slot (its cache is still there), false for a
    /// new, empty slot. Fails with <see cref="ErrorCodes.Overloaded"/> when the queue is full or the wait runs out.</summary>
    [Alias("Reserve"), ResponseTimeout("00:10:00")]
    Task<bool> Reserve(string sessionId, long epoch = 0, CancellationToken cancellation = default);

    /// <summary>Marks a session between turns: its cache stays for the next turn, but a waiting session may take
    /// the slot (the session then rebuilds its cache from its history).</summary>
    [Alias("Park")]
    Task Park(string sessionId);

    /// <summary>Frees a session's KV slot (no-op when it holds none, or holds it for a turn newer than
    /// <paramref name="epoch"/>: a newer activation of the session).</summary>
    [Alias("Release")]
    Task Release(string sessionId, long epoch = long.MaxValue);

    /// <summary>Unloads the stage: its weights and KV are freed and given back to the silo's budget; steps still
    /// queued fail. A no-op when nothing is loaded.</summary>
    /// <summary>The sessions in a turn at this shard (their leases not parked): those a drain moves first.</summary>
    [Alias("RunningSessions")]
    Task<string[]> RunningSessions();

    [Alias("Unload"), ResponseTimeout("00:05:00")]
    Task Unload();

    /// <summary>Runs one step and passes the result to the next shard; the last shard samples.</summary>
    [Alias("Step"), ResponseTimeout("00:05:00")]
    Task<StepResult> Step(StepRequest request);

    /// <summary>Runs the steps of several sessions (at most <see cref="MaxStepBatch"/>, one of each), as
    /// <see cref="Step"/> runs each: the outputs of one decode run at the stage before travel in one message instead
    /// of one per session. Each step succeeds or fails alone; the replies are in the order of the requests.</summary>
    [Alias("StepBatch"), ResponseTimeout("00:05:00")]
    Task<StepReply[]> StepBatch(StepRequest[] requests);

    /// <summary>Most steps one <see cref="StepBatch"/> carries.</summary>
    const int MaxStepBatch = 1024;

    /// <summary>Copies positions [from, from + count) of the session's cache out (it must hold them).</summary>
    [Alias("ExportKv"), ResponseTimeout("00:01:00")]
    Task<KvChunk> ExportKv(string sessionId, int from, int count);

    /// <summary>Appends a chunk exported by a shard of the same stage to the session's cache at
    /// <paramref name="position"/> (what it holds now, under turn <paramref name="epoch"/>); returns the positions
    /// held after.</summary>
    [Alias("ImportKv"), ResponseTimeout("00:01:00")]
    Task<int> ImportKv(string sessionId, long epoch, int position, KvChunk chunk);
}
