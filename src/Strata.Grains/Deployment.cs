using Strata.Contracts;

namespace Strata.Grains;

/// <summary>The grain storage provider that holds Strata's control state (deployments, sessions): Redis when the
/// cluster uses Redis, memory in the embedded localhost cluster.</summary>
public static class StrataStorage
{
    /// <summary>Provider name.</summary>
    public const string Name = "strata";
}

/// <summary>
/// What a model grain keeps in grain storage: the request, the plan version (it only grows) and every shard of the
/// deployment. It is written before shards are configured, so a silo never holds a current shard the record does
/// not name, and re-read by a fresh activation after idle collection or the loss of the grain's silo.
/// </summary>
[GenerateSerializer, Alias("strata.DeploymentRecord")]
public sealed class DeploymentRecord
{
    /// <summary>The deploy request; null when nothing is deployed.</summary>
    [Id(0)] public DeployRequest? Request { get; set; }

    /// <summary>Plan version: every deploy and re-plan takes the next one; a record that was cleared keeps it.</summary>
    [Id(1)] public long Version { get; set; }

    /// <summary>Every shard: replicas of one stage share its index.</summary>
    [Id(2)] public List<ShardRecord> Shards { get; set; } = [];
}

/// <summary>One shard of a deployment.</summary>
/// <param name="Key">The shard grain key (model#stage#version#silo).</param>
/// <param name="Replica">Replica number within its stage (0 for the plan's own shard).</param>
/// <param name="Config">What it serves.</param>
/// <param name="Bytes">Memory it takes on its silo (weights plus KV), for placing more shards beside it.</param>
[GenerateSerializer, Immutable, Alias("strata.ShardRecord")]
public sealed record ShardRecord(
    [property: Id(0)] string Key,
    [property: Id(1)] int Replica,
    [property: Id(2)] ShardConfig Config,
    [property: Id(3)] long Bytes);

/// <summary>What a session grain keeps in grain storage at the end of every turn, so that a conversation survives the
/// loss of its grain's silo.</summary>
[GenerateSerializer, Alias("strata.SessionRecord")]
public sealed class SessionRecord
{
    /// <summary>The model of the session's first turn.</summary>
    [Id(0)] public string? Model { get; set; }

    /// <summary>Every token of the conversation: prompts and generated tokens.</summary>
    [Id(1)] public List<int> History { get; set; } = [];

    /// <summary>The sampler's RNG state after the last sampled token.</summary>
    [Id(2)] public ulong[]? Rng { get; set; }

    /// <summary>Epoch of the last turn; stages refuse steps of older ones.</summary>
    [Id(3)] public long Turn { get; set; }

    /// <summary>Sampling settings of the last turn.</summary>
    [Id(4)] public SamplingSpec? Sampling { get; set; }

    /// <summary>Turns that completed; a stream's <see cref="TurnInfo.Turn"/> is this count when it began.</summary>
    [Id(5)] public long CompletedTurns { get; set; }

    /// <summary>The last completed turn: where its prompt began in the history, how long it was, why it ended, so
    /// that a client that missed its end can be sent the rest.</summary>
    [Id(6)] public int LastTurnStart { get; set; }

    /// <inheritdoc cref="LastTurnStart"/>
    [Id(7)] public int LastTurnPrompt { get; set; }

    /// <inheritdoc cref="LastTurnStart"/>
    [Id(8)] public string? LastFinish { get; set; }

    /// <summary>Who the session belongs to (<see cref="CallerContext"/>): the caller of its first turn, or null.</summary>
    [Id(9)] public string? Owner { get; set; }
}
