using System.Globalization;
using Microsoft.Extensions.Logging;
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
/// A model's deployment: plans stages over the live silos' advertised capacity, places one shard per stage on the
/// silo the plan chose, and reports the route ready only when every stage is loaded.
/// </summary>
internal sealed partial class ModelGrain(
    StageHost host,
    IClusterMembershipService membership,
    ISiloMetadataCache metadata,
    IGrainFactory grains,
    ILogger<ModelGrain> logger) : Grain, IModelGrain
{
    private DeployRequest? _request;
    private string? _packagePath;
    private List<(ShardConfig Config, string Key)> _shards = [];
    private long _version;

    private string Model => this.GetPrimaryKeyString();

    public async Task<ModelStatus> Deploy(DeployRequest request)
    {
        Validate(request);
        string resolved = host.Resolve(request.PackagePath);
        PackageManifest manifest;
        try
        {
            manifest = ModelPackage.Open(resolved, verify: false).Manifest;
        }
        catch (Exception e) when (e is ModelFormatException or IOException)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, $"cannot deploy {request.PackagePath}: {e.Message}");
        }

        var silos = LiveSilos();
        var kvElement = 4; // fp32 KV on the CPU; conservative for fp16 devices
        var footprint = ModelFootprint.From(manifest, kvElement, StageGraphBuilder.AttentionHeadDim(manifest.Config));
        StagePlan plan;
        try
        {
            plan = StagePlanner.Plan(footprint, silos, new PlanOptions { Stages = request.Stages, KvTokens = request.MaxContext * request.MaxSessions });
        }
        catch (PlanningException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, e.Message);
        }

        // A redeploy replaces the running version: its stages are unloaded first, so that the new plan has the silos'
        // memory (streams still running on the old version fail; sessions start their next turn on the new one).
        await UnloadShards(_shards);
        _version++;
        var shards = new List<(ShardConfig, string)>();
        for (int i = plan.Stages.Count - 1; i >= 0; i--)
        {
            var s = plan.Stages[i];
            string key = ShardKeys.Format(Model, i, (int)_version, s.SiloId);
            string? next = i == plan.Stages.Count - 1 ? null : shards[0].Item2;
            shards.Insert(0, (new ShardConfig(Model, request.PackagePath, i, s.FirstLayer, s.EndLayer, manifest.Config.NumLayers,
                next, request.MaxContext, request.MaxSessions, request.AdmissionQueue, request.AdmissionWait), key));
        }
        _request = request;
        _packagePath = request.PackagePath;
        _shards = shards;
        LogPlan(logger, Model, string.Join("; ", plan.Stages.Select(s => $"[{s.FirstLayer},{s.EndLayer}) on {s.SiloId}")));
        await Task.WhenAll(_shards.Select(s => grains.GetGrain<IShardGrain>(s.Key).Configure(s.Config)));
        return await GetStatus();
    }

    private static void Validate(DeployRequest r)
    {
        if (string.IsNullOrWhiteSpace(r.PackagePath)) throw new StrataException(ErrorCodes.InvalidRequest, "package path is empty");
        if (r.Stages is < 1) throw new StrataException(ErrorCodes.InvalidRequest, $"stages must be at least 1, got {r.Stages}");
        if (r.MaxContext < 1) throw new StrataException(ErrorCodes.InvalidRequest, $"max context must be at least 1, got {r.MaxContext}");
        if (r.MaxSessions < 1) throw new StrataException(ErrorCodes.InvalidRequest, $"max sessions must be at least 1, got {r.MaxSessions}");
        if (r.AdmissionQueue is < 0) throw new StrataException(ErrorCodes.InvalidRequest, $"admission queue must be >= 0, got {r.AdmissionQueue}");
        if (r.AdmissionWait is { } wait && (wait < TimeSpan.Zero || wait > TimeSpan.FromMinutes(5)))
            throw new StrataException(ErrorCodes.InvalidRequest, $"admission wait must be between 0 and 5 minutes, got {wait}");
    }

    private List<SiloCapacity> LiveSilos()
    {
        var result = new List<SiloCapacity>();
        foreach (var member in membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status != SiloStatus.Active) continue;
            var md = metadata.GetSiloMetadata(member.SiloAddress).Metadata;
            if (!md.TryGetValue(StrataMetadata.Memory, out var mem) || !long.TryParse(mem, CultureInfo.InvariantCulture, out long bytes)) continue;
            double? speed = md.TryGetValue(StrataMetadata.Speed, out var sp) && double.TryParse(sp, CultureInfo.InvariantCulture, out double v) && v > 0 ? v : null;
            result.Add(new SiloCapacity(member.SiloAddress.ToParsableString(), md.GetValueOrDefault(StrataMetadata.Device, "cpu"), bytes, speed));
        }
        if (result.Count == 0)
            throw new StrataException(ErrorCodes.InvalidRequest, "no active silo advertises Strata capacity (is any silo running with Strata configured?)");
        return result;
    }

    private async Task UnloadShards(IEnumerable<(ShardConfig Config, string Key)> shards)
    {
        await Task.WhenAll(shards.Select(async s =>
        {
            try { await grains.GetGrain<IShardGrain>(s.Key).Unload(); }
            catch (Exception e) when (e is not OutOfMemoryException) { /* its silo is gone, and the stage with it */ }
        }));
    }

    public async Task<ModelStatus> GetStatus()
    {
        if (_request is null) return new ModelStatus(Model, DeploymentState.NotDeployed, null, null, 0, []);
        var statuses = await Task.WhenAll(_shards.Select(async s =>
        {
            try
            {
                return await grains.GetGrain<IShardGrain>(s.Key).GetStatus();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return new ShardStatus(DeploymentState.Failed, Describe(e), ShardKeys.Silo(s.Key), "?", 0, 0, 0, 0);
            }
        }));
        var stages = _shards.Select((s, i) => new StageStatus(i, s.Config.FirstLayer, s.Config.EndLayer, s.Key, statuses[i].Silo,
            statuses[i].Device, statuses[i].State == DeploymentState.NotDeployed ? DeploymentState.Failed : statuses[i].State,
            statuses[i].State == DeploymentState.NotDeployed ? "the shard lost its stage (silo restarted?)" : statuses[i].Error,
            statuses[i].ActiveSessions, statuses[i].Slots, statuses[i].WeightBytes, statuses[i].KvBytes,
            statuses[i].WaitingSessions, statuses[i].QueuedSteps)).ToList();
        var failed = stages.FirstOrDefault(s => s.State == DeploymentState.Failed);
        var state = failed is not null ? DeploymentState.Failed
            : stages.All(s => s.State == DeploymentState.Ready) ? DeploymentState.Ready : DeploymentState.Loading;
        string? error = failed is null ? null : $"stage {failed.Index} (layers [{failed.FirstLayer}, {failed.EndLayer}) on {failed.Silo}): {failed.Error}";
        return new ModelStatus(Model, state, error, _packagePath, _request.MaxContext, stages);
    }

    public async Task<Route> GetRoute()
    {
        var status = await GetStatus();
        if (status.State != DeploymentState.Ready)
            throw new StrataException(ErrorCodes.ModelNotReady, status.State switch
            {
                DeploymentState.NotDeployed => $"model '{Model}' is not deployed (strata cluster deploy --model PKG)",
                DeploymentState.Loading => $"model '{Model}' is still loading its stages",
                _ => $"model '{Model}' failed: {status.Error}",
            });
        return new Route(Model, _packagePath!, _shards.Select(s => s.Key).ToArray(), _request!.MaxContext, _version);
    }

    /// <summary>One line for an operator: Orleans' own messages carry inner exceptions and stack traces.</summary>
    private static string Describe(Exception e)
    {
        if (e is StrataException) return e.Message;
        string first = e.Message.Split('\n', 2)[0].Trim();
        int at = first.IndexOf(" at Orleans.", StringComparison.Ordinal);
        if (at > 0) first = first[..at];
        if (first.Length > 200) first = first[..200] + "…";
        return $"silo unreachable or stage lost ({e.GetType().Name}: {first})";
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "model {Model}: plan {Plan}")]
    private static partial void LogPlan(ILogger logger, string model, string plan);
}
