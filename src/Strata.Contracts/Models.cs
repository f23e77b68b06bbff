namespace Strata.Contracts;

/// <summary>Asks the model grain to deploy a model package across the cluster.</summary>
/// <param name="PackagePath">The package folder: absolute, or relative to each silo's model store.</param>
/// <param name="Stages">Stage count, or null for auto (fewest stages that fit).</param>
/// <param name="MaxContext">KV positions per session (prompt plus generated tokens).</param>
/// <param name="MaxSessions">Sessions each stage holds KV for at once (fewer where a silo's memory cannot hold
/// that many; the stage status shows the slots it got).</param>
/// <param name="AdmissionQueue">Sessions that may wait for a KV slot at each stage; null = the silo's default.</param>
/// <param name="AdmissionWait">How long a session waits for a KV slot before it is refused; null = the silo's
/// default.</param>
/// <param name="Replicas">Shards per stage (each on its own silo where the cluster has enough), or null for auto: as
/// many as spare capacity allows once the fewest-stages plan is placed. Default 1.</param>
/// <param name="KvDtype">Element type of the KV cache: <c>fp16</c> (half the KV memory, so twice the sessions in the
/// same budget; attention runs in fp16), <c>fp32</c>, or null for each stage's own precision.</param>
[GenerateSerializer, Immutable, Alias("strata.DeployRequest")]
public sealed record DeployRequest(
    [property: Id(0)] string PackagePath,
    [property: Id(1)] int? Stages = null,
    [property: Id(2)] int MaxContext = 1024,
    [property: Id(3)] int MaxSessions = 8,
    [property: Id(4)] int? AdmissionQueue = null,
    [property: Id(5)] TimeSpan? AdmissionWait = null,
    [property: Id(6)] int? Replicas = 1,
    [property: Id(7)] string? KvDtype = null);

/// <summary>Lifecycle of a deployment and of each shard.</summary>
public enum DeploymentState
{
    /// <summary>Nothing deployed.</summary>
    NotDeployed,
    /// <summary>Shards are loading their weights.</summary>
    Loading,
    /// <summary>Every stage is loaded: the route serves.</summary>
    Ready,
    /// <summary>A stage failed to load or was lost; <c>Error</c> says why.</summary>
    Failed,
}

/// <summary>One stage of a deployment as the cluster sees it.</summary>
[GenerateSerializer, Immutable, Alias("strata.StageStatus")]
public sealed record StageStatus(
    [property: Id(0)] int Index,
    [property: Id(1)] int FirstLayer,
    [property: Id(2)] int EndLayer,
    [property: Id(3)] string ShardKey,
    [property: Id(4)] string Silo,
    [property: Id(5)] string Device,
    [property: Id(6)] DeploymentState State,
    [property: Id(7)] string? Error,
    [property: Id(8)] int ActiveSessions,
    [property: Id(9)] int Slots,
    [property: Id(10)] long WeightBytes,
    [property: Id(11)] long KvBytes,
    [property: Id(12)] int WaitingSessions = 0,
    [property: Id(13)] int QueuedSteps = 0,
    [property: Id(14)] int Replica = 0);

/// <summary>A model's deployment: its state, its plan version (it only grows: every deploy, re-plan and scale makes a
/// new one) and its shards (<see cref="StageStatus.Replica"/> tells the replicas of one stage apart).</summary>
[GenerateSerializer, Immutable, Alias("strata.ModelStatus")]
public sealed record ModelStatus(
    [property: Id(0)] string Model,
    [property: Id(1)] DeploymentState State,
    [property: Id(2)] string? Error,
    [property: Id(3)] string? PackagePath,
    [property: Id(4)] int MaxContext,
    [property: Id(5)] IReadOnlyList<StageStatus> Stages,
    [property: Id(6)] long Version = 0);

/// <summary>What a session needs to run a model: its shards in order and its limits.</summary>
[GenerateSerializer, Immutable, Alias("strata.Route")]
public sealed record Route(
    [property: Id(0)] string Model,
    [property: Id(1)] string PackagePath,
    [property: Id(2)] IReadOnlyList<string> ShardKeys,
    [property: Id(3)] int MaxContext,
    [property: Id(4)] long Version);

/// <summary>Deploys models and answers where their stages run.</summary>
[Alias("strata.IModelGrain")]
public interface IModelGrain : IGrainWithStringKey
{
    /// <summary>Plans stages over the live silos, places one shard per stage and starts their loads. Returns at once
    /// with state Loading; poll <see cref="GetStatus"/> until Ready or Failed.</summary>
    [Alias("Deploy"), ResponseTimeout("00:05:00")]
    Task<ModelStatus> Deploy(DeployRequest request);

    /// <summary>State of the deployment and of every stage.</summary>
    [Alias("GetStatus")]
    Task<ModelStatus> GetStatus();

    /// <summary>A route for a session: <paramref name="current"/> again when every shard of it is still serving
    /// (affinity), else one replica of every stage, the least loaded. A <see cref="StrataException"/>
    /// (model_not_found) when the model is not deployed, (model_not_ready) while it is loading.</summary>
    [Alias("GetRoute"), ResponseTimeout("00:05:00")]
    Task<Route> GetRoute(IReadOnlyList<string>? current = null);

    /// <summary>A session's step through <paramref name="failed"/> failed or timed out. The model grain probes every
    /// shard, drops those that are lost, re-plans their stages onto the surviving silos (a new plan version) when no
    /// replica is left, and returns a route that serves. Many sessions reporting one loss cause one re-plan.</summary>
    [Alias("ReportLost"), ResponseTimeout("00:05:00")]
    Task<Route> ReportLost(IReadOnlyList<string> failed);

    /// <summary>Whether the shard is part of the current deployment; silos unload the stages that are not.</summary>
    [Alias("OwnsShard")]
    Task<bool> OwnsShard(string shardKey);

    /// <summary>Moves every shard off <paramref name="silo"/>: a replacement is placed and loaded elsewhere first,
    /// then the shards there leave the deployment (a new plan version); the sessions in a turn on them move to the
    /// replacements one at a time by replay while the old shards still serve them; then the shards unload.</summary>
    [Alias("Drain"), ResponseTimeout("00:10:00")]
    Task<ShardMoves> Drain(string silo);

    /// <summary>Adds or removes replicas while sessions stream, until every stage has <paramref name="replicas"/>
    /// shards (null: as many as spare capacity allows). A new plan version; sessions on a removed replica move by
    /// replay.</summary>
    [Alias("Scale"), ResponseTimeout("00:10:00")]
    Task<ModelStatus> Scale(int? replicas);

    /// <summary>Plans <paramref name="request"/> over the live silos as <see cref="Deploy"/> would, with the silos'
    /// advertised calibrations, and returns the plan and its predicted step time without storing, loading or changing
    /// anything (<c>strata cluster deploy --dry-run</c>).</summary>
    [Alias("PlanDeploy")]
    Task<DeployPlan> PlanDeploy(DeployRequest request);
}

/// <summary>A deployment's plan, not carried out: its stages and, when every silo it uses advertises a calibration,
/// the step time predicted from them.</summary>
/// <param name="Model">The model grain's key.</param>
/// <param name="Stages">The stages, first to last.</param>
/// <param name="Batch">Rows per step the prediction is for.</param>
/// <param name="StepSeconds">Predicted slowest stage's step plus the hops (what the planner minimises); null
/// without calibrations.</param>
/// <param name="TokenSeconds">Predicted time of one step through every stage and hop (a lone session's time per
/// token); null without calibrations.</param>
/// <param name="Description">The plan as the planner writes it for logs.</param>
/// <param name="Silos">The live silos the plan was made over, with what they advertise.</param>
[GenerateSerializer, Immutable, Alias("strata.DeployPlan")]
public sealed record DeployPlan(
    [property: Id(0)] string Model,
    [property: Id(1)] IReadOnlyList<PlannedStageInfo> Stages,
    [property: Id(2)] int Batch,
    [property: Id(3)] double? StepSeconds,
    [property: Id(4)] double? TokenSeconds,
    [property: Id(5)] string Description,
    [property: Id(6)] IReadOnlyList<string> Silos);

/// <summary>One stage of a <see cref="DeployPlan"/>.</summary>
/// <param name="Index">Position in the chain.</param>
/// <param name="FirstLayer">First decoder layer (inclusive).</param>
/// <param name="EndLayer">One past the last decoder layer.</param>
/// <param name="Silo">The silo it would run on.</param>
/// <param name="WeightBytes">Weights it would load.</param>
/// <param name="KvBytes">KV it would reserve.</param>
/// <param name="PredictedSeconds">Its predicted step time; null without a calibration.</param>
[GenerateSerializer, Immutable, Alias("strata.PlannedStageInfo")]
public sealed record PlannedStageInfo(
    [property: Id(0)] int Index,
    [property: Id(1)] int FirstLayer,
    [property: Id(2)] int EndLayer,
    [property: Id(3)] string Silo,
    [property: Id(4)] long WeightBytes,
    [property: Id(5)] long KvBytes,
    [property: Id(6)] double? PredictedSeconds);

/// <summary>What moving shards out of a deployment did.</summary>
/// <param name="Shards">Shards that left the deployment (placed again elsewhere) and were unloaded.</param>
/// <param name="Sessions">Sessions in a turn on them that moved to the new shards before the unload.</param>
[GenerateSerializer, Immutable, Alias("strata.ShardMoves")]
public sealed record ShardMoves([property: Id(0)] int Shards, [property: Id(1)] int Sessions);

/// <summary>What draining a silo did.</summary>
/// <param name="Silo">The silo's address.</param>
/// <param name="Models">The models that had shards there.</param>
/// <param name="ShardsMoved">Shards placed elsewhere and unloaded there.</param>
/// <param name="ShardsLeft">Shards the silo still holds (0 when the drain is complete).</param>
/// <param name="SessionsMoved">Sessions in a turn there that moved before their shards unloaded.</param>
[GenerateSerializer, Immutable, Alias("strata.DrainReport")]
public sealed record DrainReport(
    [property: Id(0)] string Silo,
    [property: Id(1)] IReadOnlyList<string> Models,
    [property: Id(2)] int ShardsMoved,
    [property: Id(3)] int ShardsLeft,
    [property: Id(4)] int SessionsMoved = 0);

/// <summary>The models deployed in the cluster (one grain, key <see cref="Key"/>), kept in grain storage.</summary>
[Alias("strata.IModelCatalogGrain")]
public interface IModelCatalogGrain : IGrainWithStringKey
{
    /// <summary>The catalog's key.</summary>
    const string Key = "strata";

    /// <summary>Records that <paramref name="model"/> has been deployed.</summary>
    [Alias("Add")]
    Task Add(string model);

    /// <summary>The names of the models ever deployed and not removed, sorted.</summary>
    [Alias("List")]
    Task<IReadOnlyList<string>> List();
}

/// <summary>One silo's control: lives on that silo (key <c>silo#{address}</c>).</summary>
[Alias("strata.ISiloControlGrain")]
public interface ISiloControlGrain : IGrainWithStringKey
{
    /// <summary>Stops new shards and sessions there and moves every shard it holds to other silos; returns when it
    /// holds none (or says what is left).</summary>
    [Alias("Drain"), ResponseTimeout("00:10:00")]
    Task<DrainReport> Drain();
}

/// <summary>
/// The silo a caller reaches first checks its peers at once: a client whose stream broke calls it before it resumes
/// the turn, so that a silo whose process is gone is declared dead now and its sessions reactivate elsewhere, rather
/// than after the membership's missed probes. One per silo (a stateless worker, run where it is called).
/// </summary>
[Alias("strata.IPeerWatchGrain")]
public interface IPeerWatchGrain : IGrainWithIntegerKey
{
    /// <summary>Checks every other active silo; returns how many were found gone and declared dead.</summary>
    [Alias("Sweep")]
    Task<int> Sweep();
}

/// <summary>The silos being drained, cluster-wide: planners place nothing new on them.</summary>
[Alias("strata.IDrainRegistryGrain")]
public interface IDrainRegistryGrain : IGrainWithStringKey
{
    /// <summary>Marks a silo as draining.</summary>
    [Alias("Add")]
    Task Add(string silo);

    /// <summary>The silos being drained.</summary>
    [Alias("Get")]
    Task<IReadOnlyList<string>> Get();
}
