using System.Diagnostics;
using Orleans.Concurrency;
using Strata.Contracts;
using Strata.Engine.Serving;
using Strata.Grains.Placement;
using Strata.Grains.Stages;

namespace Strata.Grains;

/// <summary>
/// A stage of a deployed model on the silo the plan chose. The stage itself lives in the silo's
/// <see cref="StageHost"/> (loaded in the background, run on its own thread); the grain is its address. Steps from
/// many sessions interleave; each is passed straight on to the shard its route names next, so one shard serves every
/// route (replica combination, re-plan) through its stage.
/// </summary>
[PinnedShardPlacement, Reentrant]
internal sealed class ShardGrain(StageHost host, ILocalSiloDetails silo, IGrainFactory grains) : Grain, IShardGrain
{
    private string Key => this.GetPrimaryKeyString();

    public async Task<ShardStatus> Configure(ShardConfig config)
    {
        await host.Start(Key, config);
        return await GetStatus();
    }

    public Task<ShardStatus> GetStatus()
    {
        var w = host.Get(Key);
        return Task.FromResult(w is null
            ? new ShardStatus(DeploymentState.NotDeployed, null, silo.SiloAddress.ToParsableString(), host.Device.ToString(), 0, 0, 0, 0)
            : new ShardStatus(w.State, w.Error, silo.SiloAddress.ToParsableString(), w.Device == "" ? host.Device.ToString() : w.Device,
                w.ActiveSessions, w.State == DeploymentState.Ready ? w.Slots : w.Config.Slots, w.WeightBytes, w.KvBytes,
                w.WaitingSessions, w.QueuedSteps));
    }

    public Task<bool> Reserve(string sessionId, long epoch = 0, CancellationToken cancellation = default) =>
        Worker().Reserve(sessionId, epoch, cancellation);

    public Task<string[]> RunningSessions() => Task.FromResult(host.Get(Key)?.RunningSessions() ?? []);

    public async Task Unload()
    {
        await host.Unload(Key);
        DeactivateOnIdle();
    }

    public Task Park(string sessionId)
    {
        host.Get(Key)?.Park(sessionId);
        return Task.CompletedTask;
    }

    public Task Release(string sessionId, long epoch = long.MaxValue)
    {
        host.Get(Key)?.Release(sessionId, epoch);
        return Task.CompletedTask;
    }

    public async Task<StepResult> Step(StepRequest request)
    {
        var worker = Worker();
        int stage = worker.Config.StageIndex;
        bool last = worker.Config.EndLayer == worker.Config.TotalLayers;
        if (!last && (request.Route is not { } route || route.Count <= stage + 1))
            throw new StrataException(ErrorCodes.InvalidRequest, $"the step names no shard after stage {stage} (its route has {request.Route?.Count ?? 0} entries)");
        // Queue wait (batcher queue and batch-mates) and compute at this stage; the hop to the next one.
        using var span = StrataTracing.StartSpan("stage.step");
        bool traced = StrataTracing.Records(span);
        long arrived = traced ? Stopwatch.GetTimestamp() : 0;
        var output = await worker.Step(request);
        if (traced)
        {
            double total = Stopwatch.GetElapsedTime(arrived).TotalMilliseconds;
            span!.SetTag("strata.stage", stage).SetTag("strata.shard", Key).SetTag("strata.tokens", request.TokenCount)
                .SetTag("strata.compute_ms", output.Milliseconds).SetTag("strata.queue_ms", Math.Max(0, total - output.Milliseconds));
        }
        if (last)
            return new StepResult(output.Token, output.RngState, [output.Milliseconds]);
        string next = request.Route![stage + 1];

        var hidden = output.Hidden!;
        var forwarded = request with
        {
            Tokens = null,
            Hidden = hidden.Data,
            HiddenType = hidden.Type == Engine.Graph.ComputeType.Float16 ? "fp16" : "fp32",
        };
        long sent = Stopwatch.GetTimestamp();
        var result = await grains.GetGrain<IShardGrain>(next).Step(forwarded);
        double hop = Stopwatch.GetElapsedTime(sent).TotalMilliseconds - result.StageMilliseconds.Sum();
        StrataMetrics.StageHopSeconds.Record(Math.Max(0, hop) / 1000, worker.MetricTags);
        if (traced) span!.SetTag("strata.hop_ms", Math.Max(0, hop));
        return result with { StageMilliseconds = [output.Milliseconds, .. result.StageMilliseconds] };
    }

    public Task<KvChunk> ExportKv(string sessionId, int from, int count) => Worker().ExportKv(sessionId, from, count);

    public Task<int> ImportKv(string sessionId, long epoch, int position, KvChunk chunk) => Worker().ImportKv(sessionId, epoch, position, chunk);

    private StageWorker Worker() => host.Get(Key)
        ?? throw new StrataException(ErrorCodes.ModelNotReady, $"shard {Key} is not configured on this silo (was it redeployed or the silo restarted?)");
}
