using Strata.Contracts;
using Strata.Engine.Serving;

namespace Strata.Grains.Stages;

/// <summary>
/// Sends a stage's outputs on to the next stages one message per decode run and next shard instead of one per
/// session. The steps of a run complete together (<see cref="StepRun"/>), and each step's grain call hands its
/// forwarded request here; once every successful step of the run has (or has said it will not), the requests go to
/// each next shard as one <see cref="IShardGrain.StepBatch"/>, or as a plain <see cref="IShardGrain.Step"/> when a
/// shard gets only one. Each caller gets its own step's result or typed error back; a failed batch call (the next
/// silo gone, a timeout) fails every step it carried, as their own calls would have failed.
/// </summary>
/// <remarks>The call is sent from the grain call of the run's last step to arrive, so it leaves inside a grain
/// (calls between grains of the silos pass the control filter) and under that step's trace context; every other
/// traced step names its own in <see cref="StepRequest.TraceParent"/>.</remarks>
/// <param name="tags">Metric tags (model, stage).</param>
/// <param name="enabled">False sends every step alone (for comparison).</param>
internal sealed class HopBatcher(KeyValuePair<string, object?>[] tags, bool enabled = true)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<StepRun, Gathering> _open = new(ReferenceEqualityComparer.Instance);

    /// <summary>Runs gathered but not yet complete (tests).</summary>
    internal int Open { get { lock (_lock) return _open.Count; } }

    /// <summary>Sends <paramref name="request"/> to shard <paramref name="next"/> with the other steps of its decode
    /// run that go there, and returns its own result.</summary>
    public Task<StepResult> Forward(IGrainFactory grains, string next, StepRequest request, StepRun? run)
    {
        if (!enabled || run is null || run.Steps <= 1)
        {
            StrataMetrics.StageHopSteps.Record(1, tags);
            return grains.GetGrain<IShardGrain>(next).Step(request);
        }
        var item = new Item(next, request);
        List<Item>? complete = null;
        lock (_lock)
        {
            var gathering = Join(run);
            gathering.Items.Add(item);
            if (gathering.Arrived == run.Steps) complete = Close(run, gathering);
        }
        if (complete is not null) Send(grains, complete);
        return item.Done.Task;
    }

    /// <summary>A step of <paramref name="run"/> that succeeded at this stage but will not be forwarded (it failed
    /// on the way): the others need not wait for it.</summary>
    public void Skip(IGrainFactory grains, StepRun? run)
    {
        if (!enabled || run is null || run.Steps <= 1) return;
        List<Item>? complete = null;
        lock (_lock)
        {
            var gathering = Join(run);
            gathering.Skipped++;
            if (gathering.Arrived == run.Steps) complete = Close(run, gathering);
        }
        if (complete is not null) Send(grains, complete);
    }

    private Gathering Join(StepRun run)
    {
        if (!_open.TryGetValue(run, out var gathering)) _open[run] = gathering = new Gathering();
        return gathering;
    }

    private List<Item> Close(StepRun run, Gathering gathering)
    {
        _open.Remove(run);
        return gathering.Items;
    }

    private void Send(IGrainFactory grains, List<Item> items)
    {
        foreach (var group in items.GroupBy(i => i.Next, StringComparer.Ordinal))
        {
            var batch = group.ToArray();
            StrataMetrics.StageHopSteps.Record(batch.Length, tags);
            if (batch.Length == 1) _ = Relay(batch[0], grains.GetGrain<IShardGrain>(group.Key).Step(batch[0].Request));
            else _ = Deliver(batch, grains.GetGrain<IShardGrain>(group.Key).StepBatch([.. batch.Select(i => i.Request)]));
        }
    }

    private static async Task Relay(Item item, Task<StepResult> call)
    {
        try { item.Done.TrySetResult(await call); }
        catch (Exception e) { item.Done.TrySetException(e); }
    }

    private static async Task Deliver(Item[] batch, Task<StepReply[]> call)
    {
        StepReply[] replies;
        try
        {
            replies = await call;
            if (replies is null || replies.Length != batch.Length)
                throw new StrataException(ErrorCodes.StageFailed, $"a batch of {batch.Length} steps got {replies?.Length ?? 0} replies");
        }
        catch (Exception e)
        {
            foreach (var item in batch) item.Done.TrySetException(e);
            return;
        }
        for (int i = 0; i < batch.Length; i++)
        {
            if (replies[i].Result is { } result) batch[i].Done.TrySetResult(result);
            else batch[i].Done.TrySetException(new StrataException(replies[i].ErrorCode ?? ErrorCodes.StageFailed,
                replies[i].Error ?? "the next stage failed the step without saying why"));
        }
    }

    private sealed class Gathering
    {
        public List<Item> Items { get; } = [];
        public int Skipped { get; set; }
        public int Arrived => Items.Count + Skipped;
    }

    private sealed class Item(string next, StepRequest request)
    {
        public string Next { get; } = next;
        public StepRequest Request { get; } = request;
        public TaskCompletionSource<StepResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
