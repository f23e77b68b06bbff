using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Grains.Placement;
using Strata.Grains.Stages;
using Strata.Models;
using Strata.Models.Packaging;
using Strata.Models.Planning;

namespace Strata.Grains;

/// <summary>
/// A model's deployment: plans stages over the live silos' advertised capacity, places the shards (and replicas) on
/// the silos the plan chose, hands sessions routes, and repairs the deployment when a shard is lost. The deployment
/// lives in grain storage (<see cref="DeploymentRecord"/>), so idle collection or the loss of this grain's silo
/// forgets nothing. Reentrant: status and route calls run while a deploy or repair waits for loads; changes take
/// <see cref="_changes"/> one at a time.
/// </summary>
[Reentrant]
internal sealed partial class ModelGrain(
    [PersistentState("deployment", StrataStorage.Name)] IPersistentState<DeploymentRecord> state,
    StageHost host,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    IGrainFactory grains,
    Control.PeerWatch peers,
    IOptions<StrataSiloOptions> options,
    ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private readonly SemaphoreSlim _changes = new(1, 1);

    private string Model => this.GetPrimaryKeyString();
    private DeploymentRecord Record => state.State;

    /// <summary>What <see cref="Deploy"/> places and <see cref="PlanDeploy"/> shows: the request checked, the
    /// package's manifest, the candidate silos and the plan of its footprint over them.</summary>
    private async Task<(PackageManifest Manifest, List<SiloCapacity> Silos, PlanOptions Options, StagePlan Plan)> PlanFor(DeployRequest request)
    {
        Validate(request);
        var manifest = OpenManifest(request.PackagePath);
        var silos = await Candidates([]);
        var footprint = ModelFootprint.From(manifest, KvElementBytes(request), StageGraphBuilder.AttentionHeadDim(manifest.Config));
        var options = new PlanOptions { Stages = request.Stages, KvTokens = request.MaxContext * request.MaxSessions };
        return (manifest, silos, options, Planned(() => StagePlanner.Plan(footprint, silos, options)));
    }

    /// <summary>Runs a planner call; a plan that cannot be made is the request's error.</summary>
    private static T Planned<T>(Func<T> plan)
    {
        try
        {
            return plan();
        }
        catch (PlanningException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, e.Message);
        }
    }

    public async Task<ModelStatus> Deploy(DeployRequest request)
    {
        var (manifest, silos, planOptions, plan) = await PlanFor(request);
        var replicas = Planned(() => ShardPlacement.Replicas(plan, silos, request.Replicas, planOptions));
        if (request.Replicas is int wanted && replicas.Count < (wanted - 1) * plan.Stages.Count)
            throw new StrataException(ErrorCodes.InvalidRequest,
                $"{wanted} replicas of each of {plan.Stages.Count} stage(s) do not fit: the silos hold {replicas.Count + plan.Stages.Count} shard(s), " +
                "each replica on its own silo; add silos, ask for fewer replicas (or --replicas auto)");

        await _changes.WaitAsync();
        try
        {
            // A redeploy replaces the running version: its shards are unloaded first, so that the new plan has the
            // silos' memory (streams still running on the old version move to the new one by replay).
            var old = Record.Shards.ToList();
            await UnloadShards(old);
            long version = Record.Version + 1;
            int stages = plan.Stages.Count;
            var shards = plan.Stages.Select(s => NewShard(request, manifest, s, 0, s.SiloId, version, stages))
                .Concat(replicas.Select(r => NewShard(request, manifest, plan.Stages[r.Stage], r.Replica, r.SiloId, version, stages)))
                .OrderBy(s => s.Config.StageIndex).ThenBy(s => s.Replica).ToList();
            await Store(new DeploymentRecord { Request = request, Version = version, Shards = shards });
            await grains.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.Key).Add(Model);
            LogPlan(logger, Model, version, string.Join("; ", shards.Select(s => $"stage {s.Config.StageIndex}.{s.Replica} [{s.Config.FirstLayer},{s.Config.EndLayer}) on {ShardKeys.Silo(s.Key)}")));
            await Task.WhenAll(shards.Select(s => grains.GetGrain<IShardGrain>(s.Key).Configure(s.Config)));
        }
        finally
        {
            _changes.Release();
        }
        return await GetStatus();
    }

    /// <summary>Writes the record. When the stored copy is gone (memory storage whose silo died) or another write
    /// got there first, the grain's own record is the newer one: it reads to take the current etag and writes again.</summary>
    private async Task Store(DeploymentRecord next)
    {
        state.State = next;
        try
        {
            await state.WriteStateAsync();
        }
        catch (Orleans.Storage.InconsistentStateException e)
        {
            LogRewrite(logger, Model, e.Message);
            await state.ReadStateAsync();
            next.Version = Math.Max(next.Version, state.State.Version);
            state.State = next;
            await state.WriteStateAsync();
        }
    }

    private ShardRecord NewShard(DeployRequest request, PackageManifest manifest, PlannedStage stage, int replica, string silo, long version, int stages) =>
        new(ShardKeys.Format(Model, stage.Index, version, silo, replica), replica,
            new ShardConfig(Model, request.PackagePath, stage.Index, stage.FirstLayer, stage.EndLayer, manifest.Config.NumLayers,
                request.MaxContext, request.MaxSessions, request.AdmissionQueue, request.AdmissionWait, stages, request.KvDtype),
            stage.TotalBytes);

    /// <summary>Bytes of a KV element the plan reserves: fp16 when the request asks for it, else fp32 (conservative
    /// for fp16 devices, whose stages store fp16).</summary>
    private static int KvElementBytes(DeployRequest request) => request.KvDtype == "fp16" ? 2 : 4;

    private PackageManifest OpenManifest(string packagePath)
    {
        try
        {
            return ModelPackage.Open(host.Resolve(packagePath), verify: false).Manifest;
        }
        catch (Exception e) when (e is ModelFormatException or IOException or UnauthorizedAccessException)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, $"cannot deploy {packagePath}: {host.Store.Scrub(e.Message)}");
        }
    }

    private static void Validate(DeployRequest r)
    {
        if (string.IsNullOrWhiteSpace(r.PackagePath)) throw new StrataException(ErrorCodes.InvalidRequest, "package path is empty");
        if (r.Stages is < 1 or > 1024) throw new StrataException(ErrorCodes.InvalidRequest, $"stages must be between 1 and 1024, got {r.Stages}");
        if (r.MaxContext is < 1 or > 1 << 22) throw new StrataException(ErrorCodes.InvalidRequest, $"max context must be between 1 and {1 << 22}, got {r.MaxContext}");
        if (r.MaxSessions is < 1 or > 1 << 16) throw new StrataException(ErrorCodes.InvalidRequest, $"max sessions must be between 1 and {1 << 16}, got {r.MaxSessions}");
        if (r.PackagePath.Length > 4096) throw new StrataException(ErrorCodes.InvalidRequest, "package path is longer than 4096 characters");
        if ((long)r.MaxContext * r.MaxSessions > int.MaxValue)
            throw new StrataException(ErrorCodes.InvalidRequest, $"max context x max sessions must stay below {int.MaxValue}, got {r.MaxContext} x {r.MaxSessions}");
        if (r.Replicas is < 1 or > 64) throw new StrataException(ErrorCodes.InvalidRequest, $"replicas must be between 1 and 64 (or auto), got {r.Replicas}");
        if (r.KvDtype is not (null or "fp16" or "fp32"))
            throw new StrataException(ErrorCodes.InvalidRequest, $"KV dtype must be fp16 or fp32 (or unset: each stage's precision), got '{(r.KvDtype.Length > 16 ? r.KvDtype[..16] + "..." : r.KvDtype)}'");
        if (r.AdmissionQueue is < 0 or > 1 << 20) throw new StrataException(ErrorCodes.InvalidRequest, $"admission queue must be between 0 and {1 << 20}, got {r.AdmissionQueue}");
        if (r.AdmissionWait is { } wait && (wait < TimeSpan.Zero || wait > TimeSpan.FromMinutes(5)))
            throw new StrataException(ErrorCodes.InvalidRequest, $"admission wait must be between 0 and 5 minutes, got {wait}");
    }

    /// <summary>The active silos that advertise Strata capacity, less <paramref name="unreachable"/>.</summary>
    private List<SiloCapacity> LiveSilos(IReadOnlySet<string> unreachable)
    {
        var result = new List<SiloCapacity>();
        foreach (var member in membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status != SiloStatus.Active) continue;
            string id = member.SiloAddress.ToParsableString();
            if (unreachable.Contains(id)) continue;
            var md = metadata.GetSiloMetadata(member.SiloAddress).Metadata;
            if (!md.TryGetValue(StrataMetadata.Memory, out var mem) || !long.TryParse(mem, CultureInfo.InvariantCulture, out long bytes)) continue;
            double? speed = md.TryGetValue(StrataMetadata.Speed, out var sp) && double.TryParse(sp, CultureInfo.InvariantCulture, out double v) && v > 0 ? v : null;
            result.Add(new SiloCapacity(id, md.GetValueOrDefault(StrataMetadata.Device, "cpu"), bytes, speed, SiloCalibration.TryParse(md.GetValueOrDefault(StrataMetadata.Calibration), out var measured) ? measured : null));
        }
        if (result.Count == 0)
            throw new StrataException(ErrorCodes.InvalidRequest, "no active silo advertises Strata capacity (is any silo running with Strata configured?)");
        return result;
    }

    private bool IsActive(string silo) =>
        membership.CurrentSnapshot.Members.Values.Any(m => m.Status == SiloStatus.Active && m.SiloAddress.ToParsableString() == silo);

    private async Task UnloadShards(IEnumerable<ShardRecord> shards)
    {
        await Task.WhenAll(shards.Select(async s =>
        {
            try { await grains.GetGrain<IShardGrain>(s.Key).Unload().WaitAsync(options.Value.ShardProbeTimeout * 4); }
            catch (Exception e) when (e is not OutOfMemoryException) { /* its silo is gone, and the stage with it */ }
        }));
    }

    public Task<bool> OwnsShard(string shardKey) => Task.FromResult(Record.Shards.Any(s => s.Key == shardKey));

    public async Task<ModelStatus> GetStatus()
    {
        var record = Record;
        if (record.Request is not { } request) return new ModelStatus(Model, DeploymentState.NotDeployed, null, null, 0, [], record.Version);
        var probes = await Probe(record.Shards);
        var stages = record.Shards.Select((s, i) => ToStageStatus(s, probes[i])).ToList();
        var (state, error) = Summarize(stages);
        return new ModelStatus(Model, state, error, request.PackagePath, request.MaxContext, stages, record.Version);
    }

    private static StageStatus ToStageStatus(ShardRecord s, ShardProbe p) => new(s.Config.StageIndex, s.Config.FirstLayer, s.Config.EndLayer,
        s.Key, p.Status.Silo, p.Status.Device, p.Status.State == DeploymentState.NotDeployed ? DeploymentState.Failed : p.Status.State,
        p.Status.State == DeploymentState.NotDeployed ? "the shard lost its stage (silo restarted?)" : p.Status.Error,
        p.Status.ActiveSessions, p.Status.Slots, p.Status.WeightBytes, p.Status.KvBytes, p.Status.WaitingSessions, p.Status.QueuedSteps, s.Replica);

    /// <summary>The deployment's state and error from a probe of its shards.</summary>
    private static (DeploymentState, string?) Summarize(DeploymentRecord record, ShardProbe[] probes) =>
        Summarize(record.Shards.Select((s, i) => ToStageStatus(s, probes[i])).ToList());

    /// <summary>Ready when every stage has a ready replica; Failed when some stage has none ready and none loading.</summary>
    private static (DeploymentState, string?) Summarize(IReadOnlyList<StageStatus> shards)
    {
        var state = DeploymentState.Ready;
        foreach (var stage in shards.GroupBy(s => s.Index))
        {
            if (stage.Any(s => s.State == DeploymentState.Ready)) continue;
            if (stage.Any(s => s.State == DeploymentState.Loading)) { state = DeploymentState.Loading; continue; }
            var failed = stage.First();
            return (DeploymentState.Failed, $"stage {failed.Index} (layers [{failed.FirstLayer}, {failed.EndLayer}) on {failed.Silo}): {failed.Error}");
        }
        return (state, null);
    }

    /// <summary>What a probe of one shard found: its status, and whether its silo could not be reached.</summary>
    private readonly record struct ShardProbe(ShardStatus Status, bool Unreachable)
    {
        public bool Serves => Status.State == DeploymentState.Ready;
        public int Load => Status.ActiveSessions + Status.WaitingSessions;
    }

    /// <summary>Asks every shard for its status at once, each bounded by the probe timeout; a shard whose silo is not
    /// active, or that does not answer in time, is unreachable.</summary>
    private async Task<ShardProbe[]> Probe(IReadOnlyList<ShardRecord> shards) =>
        await Task.WhenAll(shards.Select(async s =>
        {
            string silo = ShardKeys.Silo(s.Key);
            if (!IsActive(silo))
                return new ShardProbe(Lost(silo, "its silo left the cluster"), true);
            try
            {
                return new ShardProbe(await grains.GetGrain<IShardGrain>(s.Key).GetStatus().WaitAsync(options.Value.ShardProbeTimeout), false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _ = peers.Suspect(silo);
                return new ShardProbe(Lost(silo, Describe(e)), true);
            }
        }));

    private static ShardStatus Lost(string silo, string why) => new(DeploymentState.Failed, why, silo, "?", 0, 0, 0, 0);

    public async Task<Route> GetRoute(IReadOnlyList<string>? current = null)
    {
        var record = Record;
        if (record.Request is null) throw NotDeployed();
        // Affinity: a session keeps its route while every shard of it is still part of the deployment; a lost one is
        // reported by the session itself (ReportLost).
        if (current is { Count: > 0 } && current.Count == record.Shards.Max(s => s.Config.StageIndex) + 1 &&
            current.All(k => record.Shards.Any(s => s.Key == k)))
            return ToRoute(record, current);

        var probes = await Probe(record.Shards);
        if (Pick(record, probes) is { } keys) return ToRoute(record, keys);
        var (state, error) = Summarize(record, probes);
        // Loading (a first deploy, or a repair placing a lost stage again): new sessions wait for it rather than fail.
        if (state == DeploymentState.Loading) return await WaitForRoute(record);
        return await Repair(error);
    }

    /// <summary>One ready replica of every stage, the least loaded (sessions running plus waiting, then free
    /// slots); null when some stage has none.</summary>
    private static string[]? Pick(DeploymentRecord record, ShardProbe[] probes)
    {
        var shards = record.Shards.Select((s, i) => (Shard: s, Probe: probes[i])).ToList();
        int stages = record.Shards.Max(s => s.Config.StageIndex) + 1;
        var keys = new string[stages];
        for (int stage = 0; stage < stages; stage++)
        {
            var best = shards.Where(x => x.Shard.Config.StageIndex == stage && x.Probe.Serves)
                .OrderBy(x => x.Probe.Load).ThenByDescending(x => x.Probe.Status.Slots - x.Probe.Status.ActiveSessions)
                .ThenBy(x => x.Shard.Replica).Select(x => x.Shard.Key).FirstOrDefault();
            if (best is null) return null;
            keys[stage] = best;
        }
        return keys;
    }

    private Route ToRoute(DeploymentRecord record, IReadOnlyList<string> keys) =>
        new(Model, record.Request!.PackagePath, keys.ToArray(), record.Request.MaxContext, record.Version);

    private StrataException NotDeployed() =>
        new(ErrorCodes.ModelNotFound, $"model '{Model}' is not deployed (strata cluster deploy --model PKG)");

    public async Task<Route> ReportLost(IReadOnlyList<string> failed)
    {
        var record = Record;
        // A route with a shard the deployment no longer names (drained, scaled down, re-planned by an earlier
        // report) needs no repair: hand out a current one without taking the change lock.
        if (record.Request is not null && failed.Any(k => record.Shards.All(s => s.Key != k)))
        {
            var probes = await Probe(record.Shards);
            if (Pick(record, probes) is { } keys) return ToRoute(record, keys);
        }
        LogReported(logger, Model, string.Join(", ", failed));
        return await Repair(null);
    }

    /// <summary>One line for an operator: Orleans' own messages carry inner exceptions and stack traces.</summary>
    private static string Describe(Exception e)
    {
        if (e is StrataException) return e.Message;
        if (e is TimeoutException) return "silo unreachable or stage lost (no answer in time)";
        string first = e.Message.Split('\n', 2)[0].Trim();
        int at = first.IndexOf(" at Orleans.", StringComparison.Ordinal);
        if (at > 0) first = first[..at];
        if (first.Length > 200) first = first[..200] + "…";
        return $"silo unreachable or stage lost ({e.GetType().Name}: {first})";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "model {Model}: plan version {Version}: {Plan}")]
    private static partial void LogPlan(ILogger logger, string model, long version, string plan);

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: the stored deployment changed under it ({Error}); writing its own again")]
    private static partial void LogRewrite(ILogger logger, string model, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model}: a session lost its route {Route}; probing the shards")]
    private static partial void LogReported(ILogger logger, string model, string route);
}
