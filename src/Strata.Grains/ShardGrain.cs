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
/// route (replica combination, re-plan) through its stage. The outputs of one decode run that go to the same next
/// shard travel as one <see cref="IShardGrain.StepBatch"/> (<see cref="HopBatcher"/>).
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

    public Task<StepResult> Step(StepRequest request) => Run(request, batched: false);

    public async Task<StepReply[]> StepBatch(StepRequest[] requests)
    {
        if (requests is null || requests.Length == 0 || requests.Length > IShardGrain.MaxStepBatch)
            throw new StrataException(ErrorCodes.InvalidRequest, $"a step batch carries 1 to {IShardGrain.MaxStepBatch} steps, not {requests?.Length ?? 0}");
        if (requests.Any(r => r is null))
            throw new StrataException(ErrorCodes.InvalidRequest, "a step batch carries a null step");
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var r in requests)
            if (r.SessionId is { } id && !distinct.Add(id))
                throw new StrataException(ErrorCodes.InvalidRequest, $"a step batch carries two steps of session {id}");
        // Every step starts before any is awaited, so that they all reach the batcher's queue together.
        var steps = new Task<StepResult>[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            try { steps[i] = Run(requests[i], batched: true); }
            catch (Exception e) { steps[i] = Task.FromException<StepResult>(e); }
        }
        var replies = new StepReply[requests.Length];
        for (int i = 0; i < steps.Length; i++)
        {
            try { replies[i] = new StepReply(await steps[i]); }
            catch (StrataException e) { replies[i] = new StepReply(null, e.Code, e.Message); }
            catch (Exception e) { replies[i] = new StepReply(null, ErrorCodes.StageFailed, $"stage {Key}: {e.Message}"); }
        }
        return replies;
    }

    /// <summary>Runs one step here and passes its output on (the last stage samples). A step that came alone is
    /// traced under its call's context; one of a batch under its own (<see cref="StepRequest.TraceParent"/>), which
    /// is also the context of everything it calls from here on.</summary>
    private async Task<StepResult> Run(StepRequest request, bool batched)
    {
        using var span = batched ? StrataTracing.StartSpan("stage.step", request.TraceParent) : StrataTracing.StartSpan("stage.step");
        if (batched) Activity.Current = span;
        var worker = Worker();
        int stage = worker.Config.StageIndex;
        bool last = worker.Config.EndLayer == worker.Config.TotalLayers;
        if (!last && (request.Route is not { } route || route.Count <= stage + 1))
            throw new StrataException(ErrorCodes.InvalidRequest, $"the step names no shard after stage {stage} (its route has {request.Route?.Count ?? 0} entries)");
        // Queue wait (batcher queue and batch-mates) and compute at this stage; the hop to the next one.
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

        StepRequest forwarded;
        string next;
        try
        {
            next = request.Route![stage + 1];
            var hidden = output.Hidden!;
            forwarded = request with
            {
                Tokens = null,
                Hidden = hidden.Data,
                HiddenType = hidden.Type == Engine.Graph.ComputeType.Float16 ? "fp16" : "fp32",
                TraceParent = traced ? span!.Id : null,
            };
        }
        catch
        {
            worker.Hops.Skip(grains, output.Run); // the rest of its run goes on without it
            throw;
        }
        long sent = Stopwatch.GetTimestamp();
        var result = await worker.Hops.Forward(grains, next, forwarded, output.Run);
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
