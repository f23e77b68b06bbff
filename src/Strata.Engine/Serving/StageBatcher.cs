using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Models.Config;

namespace Strata.Engine.Serving;

/// <summary>How a stage forms batches.</summary>
public sealed record BatcherOptions
{
    /// <summary>Most decode rows in one ONNX Runtime run.</summary>
    public int MaxBatch { get; init; } = 64;

    /// <summary>Prompt tokens per prefill run and per turn of the batch loop: a long prompt is cut into chunks of
    /// this size with decode batches between them, so it never stalls the running sessions for long.</summary>
    public int PrefillChunk { get; init; } = 512;

    /// <summary>Stages of the pipeline this stage is part of. With more than one, a decode run takes at most its share
    /// of the sessions holding a slot here (a micro-batch of slots-in-use / depth): the rest run next, while the first
    /// micro-batch is at the following stages, so every stage of the pipeline has work instead of all but one waiting
    /// for a batch of everything. 1 = one run of every waiting step.</summary>
    public int PipelineDepth { get; init; } = 1;

    /// <summary>Idle KV slots a decode run may span to join two groups of busy slots into one batch (they run as
    /// padding rows). Wider gaps split the batch into two runs.</summary>
    public int MaxGap { get; init; } = 4;

    /// <summary>How long a step that arrived before an earlier step of its session (it starts past what the stage
    /// holds, on the same turn) waits for it. Steps sent in order can arrive out of order (each message is addressed
    /// on its own); a predecessor that never comes was lost, and the step then fails as lost KV. Default 5 s.</summary>
    public TimeSpan EarlyStepWait { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Admission to the KV slots.</summary>
    public AdmissionOptions Admission { get; init; } = new();

    /// <summary>Tests: called on the batch thread after each run with its rows and tokens per row.</summary>
    internal Action<int, int>? OnRun { get; init; }

    /// <summary>Metric tags (model, stage).</summary>
    public IReadOnlyList<KeyValuePair<string, object?>> Tags { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentException($"max batch must be >= 1, got {MaxBatch}", nameof(MaxBatch));
        if (PrefillChunk < 1) throw new ArgumentException($"prefill chunk must be >= 1, got {PrefillChunk}", nameof(PrefillChunk));
        if (MaxGap < 0) throw new ArgumentException($"max gap must be >= 0, got {MaxGap}", nameof(MaxGap));
        if (PipelineDepth < 1) throw new ArgumentException($"pipeline depth must be >= 1, got {PipelineDepth}", nameof(PipelineDepth));
        Admission.Validate();
    }
}

/// <summary>Picks a token from one row of logits ([vocab]); runs on the stage thread. The lease's
/// <see cref="KvLease.Tag"/> can keep per-session sampler state.</summary>
public delegate int RowSampler(ReadOnlySpan<float> logits, KvLease lease);

/// <summary>One step of one session at a stage.</summary>
public sealed class StepJob
{
    /// <summary>The session (it must hold a lease).</summary>
    public required string SessionId { get; init; }
    /// <summary>Positions of the session already cached at this stage.</summary>
    public required int PastLength { get; init; }
    /// <summary>The session's turn the step belongs to (as given at reservation); a step of an ended turn is stale.</summary>
    public long Epoch { get; init; }
    /// <summary>New tokens (1 = decode).</summary>
    public required int TokenCount { get; init; }
    /// <summary>First stage: the token ids.</summary>
    public int[]? Tokens { get; init; }
    /// <summary>Later stages: activations [1, TokenCount, hidden].</summary>
    public Activations? Hidden { get; init; }
    /// <summary>Last stage: picks the next token from the last position's logits; null for a step that only fills
    /// the cache (part of a prompt sent in several steps), whose token is -1.</summary>
    public RowSampler? Sample { get; init; }
}

/// <summary>The stage does not hold the session's KV the step expects: the lease is gone (released, expired or
/// evicted), holds fewer positions, or belongs to another turn. The session can reserve again and rebuild its cache
/// from its history.</summary>
public sealed class KvLostException(string message) : InvalidOperationException(message);

/// <summary>What a step produced.</summary>
/// <param name="Hidden">Activations [1, tokens, hidden] for the next stage (null at the last stage).</param>
/// <param name="Token">The sampled token (last stage), else -1.</param>
/// <param name="QueueMilliseconds">Time the step waited before its (first) run.</param>
/// <param name="RunMilliseconds">Time of the run(s) it was part of.</param>
/// <param name="BatchRows">Sequences in the run (decode), or 1 (prefill).</param>
/// <param name="Run">The decode run the step was part of (null for a prefill): its steps complete together.</param>
public sealed record StepOutcome(Activations? Hidden, int Token, double QueueMilliseconds, double RunMilliseconds, int BatchRows, StepRun? Run = null);

/// <summary>One decode run at a stage, shared by the outcomes of its steps. <see cref="Steps"/> of them succeeded;
/// their outcomes are all set at once after the run, so whoever sends them on can wait for that many and send them
/// together (one message per micro-batch per hop instead of one per session).</summary>
public sealed class StepRun(int steps)
{
    /// <summary>The steps of the run that succeeded (each has an outcome carrying this run).</summary>
    public int Steps { get; } = steps;
}

/// <summary>
/// Continuous batching for one stage. Steps of any number of sessions are queued from any thread; the batcher's own
/// thread (never a caller's scheduler) forms each turn's work from what is waiting: one decode run over every waiting
/// single-token step (sessions join and leave between turns), then prefill chunks up to the token budget. A decode
/// batch is a contiguous run of KV slots handed to ONNX Runtime in place, so nothing is copied; idle slots inside the
/// run are padding rows whose writes land past their own cached length, where the next real step overwrites them.
/// Steps of one session run in arrival order, and a batched result equals running the session alone.
/// </summary>
public sealed partial class StageBatcher : IDisposable
{
    private readonly StageRuntime _runtime;
    private readonly KvPool _pool;
    private readonly BatcherOptions _options;
    private readonly ILogger _logger;
    private readonly BlockingCollection<Pending> _inbox = new();
    private readonly Thread _thread;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly KeyValuePair<string, object?>[] _prefillTags, _decodeTags;
    private int _queueDepth;
    private float[] _logits = [];
    private volatile bool _stopping;

    /// <summary>Starts the batch thread for a loaded stage and its KV pool (the batcher owns neither).</summary>
    public StageBatcher(StageRuntime runtime, KvPool pool, BatcherOptions? options = null, ILogger? logger = null)
    {
        _runtime = runtime;
        _pool = pool;
        _options = options ?? new BatcherOptions();
        _options.Validate();
        _logger = logger ?? NullLogger.Instance;
        _tags = [.. _options.Tags];
        _prefillTags = [.. _tags, new("phase", "prefill")];
        _decodeTags = [.. _tags, new("phase", "decode")];
        Leases = new KvLeaseTable(pool.Slots, _options.Admission);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"strata-batch-{runtime.Stage}" };
        _thread.Start();
        StrataMetrics.Register(this);
    }

    /// <summary>The stage's KV slots and admission queue.</summary>
    public KvLeaseTable Leases { get; }

    /// <summary>The stage run.</summary>
    public StageRuntime Runtime => _runtime;

    /// <summary>Steps queued or running.</summary>
    public int QueueDepth => Volatile.Read(ref _queueDepth);

    internal ReadOnlySpan<KeyValuePair<string, object?>> Tags => _tags;

    /// <summary>Admits a session (waiting in the queue when every slot is taken); see <see cref="KvLeaseTable.ReserveAsync"/>.</summary>
    public async Task<KvReservation> ReserveAsync(string sessionId, long epoch = 0, CancellationToken cancellation = default)
    {
        try
        {
            var reservation = await Leases.ReserveAsync(sessionId, epoch, cancellation).ConfigureAwait(false);
            if (!reservation.Kept) StrataMetrics.RequestsAdmitted.Add(1, _tags);
            return reservation;
        }
        catch (KvAdmissionException)
        {
            StrataMetrics.RequestsRejected.Add(1, _tags);
            throw;
        }
    }

    /// <summary>Queues a step. Shape errors throw <see cref="ArgumentException"/> here; lease errors fail the task
    /// with <see cref="KvLostException"/>, a step past the KV capacity with <see cref="ContextOverflowException"/>,
    /// a step still queued when the stage shuts down with <see cref="ObjectDisposedException"/>.</summary>
    public Task<StepOutcome> StepAsync(StepJob job)
    {
        CheckShape(job);
        if (_stopping) throw new ObjectDisposedException(nameof(StageBatcher), $"stage {_runtime.Stage} is shutting down");
        var pending = new Pending(job);
        Interlocked.Increment(ref _queueDepth);
        try
        {
            _inbox.Add(pending);
        }
        catch (InvalidOperationException)
        {
            Interlocked.Decrement(ref _queueDepth);
            throw new ObjectDisposedException(nameof(StageBatcher), $"stage {_runtime.Stage} is shutting down");
        }
        return pending.Done.Task;
    }

    /// <summary>Copies positions [<paramref name="from"/>, from + <paramref name="count"/>) of the session's cache
    /// out (see <see cref="KvPool.Export"/>), on the batch thread between runs. Fails with
    /// <see cref="KvLostException"/> when the session holds no slot or fewer positions, and with
    /// <see cref="NotSupportedException"/> when the cache is in device memory.</summary>
    public Task<byte[]> ExportKvAsync(string sessionId, int from, int count) => Control(() =>
    {
        if (!Leases.TryGet(sessionId, out var lease)) throw new KvLostException($"session {sessionId} holds no KV slot at stage {_runtime.Stage}");
        if (from + count > lease.Length)
            throw new KvLostException($"session {sessionId} holds {lease.Length} positions at stage {_runtime.Stage}, not [{from}, {from + count})");
        return _pool.Export(lease.Slot, from, count);
    });

    /// <summary>Appends positions from <paramref name="data"/> (made by <see cref="ExportKvAsync"/> on a stage of the
    /// same layers and shape) to the session's cache at <paramref name="position"/>, which must be what it holds, on
    /// the batch thread between runs; the session then holds the positions as if it had computed them. Fails with
    /// <see cref="KvLostException"/> when the session holds no slot, another turn's, or another length, and with
    /// <see cref="ArgumentException"/> when the data does not fit the cache.</summary>
    public Task<int> ImportKvAsync(string sessionId, long epoch, int position, byte[] data) => Control(() =>
    {
        if (!Leases.TryGet(sessionId, out var lease)) throw new KvLostException($"session {sessionId} holds no KV slot at stage {_runtime.Stage}");
        if (lease.Epoch != epoch)
            throw new KvLostException($"KV for session {sessionId} belongs to turn {epoch} but its slot at stage {_runtime.Stage} was reserved for turn {lease.Epoch}");
        if (position != lease.Length)
            throw new KvLostException($"KV for session {sessionId} starts at position {position} but stage {_runtime.Stage} holds {lease.Length}");
        _pool.Import(lease.Slot, position, data);
        lease.Length = position + (int)(data.Length / _pool.BytesPerPosition);
        lease.LastUsed = DateTime.UtcNow;
        return lease.Length;
    });

    /// <summary>KV bytes one position of this stage costs (all its layers, keys and values).</summary>
    public long KvBytesPerPosition => _pool.BytesPerPosition;

    /// <summary>Whether the stage's cache can be copied out and in (host memory).</summary>
    public bool CanCopyKv => _pool.CanCopy;

    private Task<T> Control<T>(Func<T> action)
    {
        if (_stopping) throw new ObjectDisposedException(nameof(StageBatcher), $"stage {_runtime.Stage} is shutting down");
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = new Pending(null!)
        {
            Control = () =>
            {
                try { done.TrySetResult(action()); }
                catch (Exception e) { done.TrySetException(e); }
            },
            Abort = e => done.TrySetException(e),
        };
        try
        {
            _inbox.Add(pending);
        }
        catch (InvalidOperationException)
        {
            throw new ObjectDisposedException(nameof(StageBatcher), $"stage {_runtime.Stage} is shutting down");
        }
        return done.Task;
    }

    private void CheckShape(StepJob job) => CheckStep(_runtime.Stage, _runtime.Config, _runtime.Compute, job);

    /// <summary>Checks a step against a stage of <paramref name="config"/> computing in <paramref name="compute"/>:
    /// token count and past length, token ids inside the vocabulary (first stage), activations of the stage's type,
    /// width and byte length (later stages). Throws <see cref="ArgumentException"/> saying what is wrong.</summary>
    public static void CheckStep(StageSpec stage, LlamaConfig config, ComputeType compute, StepJob job)
    {
        if (job.TokenCount < 1) throw new ArgumentException($"a step needs at least one token, got {job.TokenCount}");
        if (job.PastLength < 0) throw new ArgumentException($"past length {job.PastLength} is negative");
        if (stage.IsFirst)
        {
            if (job.Tokens is null || job.Tokens.Length != job.TokenCount)
                throw new ArgumentException($"expected {job.TokenCount} token ids, got {job.Tokens?.Length ?? 0}");
            foreach (int id in job.Tokens)
                if ((uint)id >= (uint)config.VocabSize)
                    throw new ArgumentException($"token id {id} is outside the vocabulary (size {config.VocabSize})");
        }
        else
        {
            if (job.Hidden is null) throw new ArgumentException($"stage {stage} needs activations from the previous stage");
            job.Hidden.Validate(compute, config.HiddenSize);
            if (job.Hidden.Rows != 1 || job.Hidden.Tokens != job.TokenCount)
                throw new ArgumentException($"activations are [{job.Hidden.Rows}, {job.Hidden.Tokens}] but the step is [1, {job.TokenCount}]");
        }
        long outputBytes = (long)job.TokenCount * config.HiddenSize * Activations.ElementSize(compute);
        if (!stage.IsLast && outputBytes > Array.MaxLength)
            throw new ArgumentException($"a step of {job.TokenCount} tokens makes {outputBytes} bytes of activations, more than one buffer holds; send fewer tokens per step");
    }

    private void Loop()
    {
        var decode = new List<Pending>();
        var prefill = new Queue<Pending>();
        var deferred = new List<Pending>();
        var early = new List<Pending>();
        var busy = new HashSet<string>(StringComparer.Ordinal);
        Prefill? current = null;

        void Admit(Pending p)
        {
            if (p.Control is { } control) { control(); return; } // between runs: no run touches the cache meanwhile
            if (!busy.Add(p.Job.SessionId)) { deferred.Add(p); return; } // an earlier step of the session is queued
            if (IsEarly(p))
            {
                busy.Remove(p.Job.SessionId);
                early.Add(p);
                return;
            }
            if (p.Job.TokenCount == 1) decode.Add(p);
            else prefill.Enqueue(p);
        }

        void Finish(Pending p)
        {
            if (p.Finished) return;
            p.Finished = true;
            busy.Remove(p.Job.SessionId);
            Interlocked.Decrement(ref _queueDepth);
        }

        var inTurn = new List<Pending>();
        while (!_stopping)
        {
            if (decode.Count == 0 && prefill.Count == 0 && current is null)
            {
                // Early steps wait for their predecessors; look at them again now and then even when nothing arrives.
                if (_inbox.TryTake(out var first, early.Count > 0 ? EarlyRecheckMilliseconds : Timeout.Infinite)) Admit(first);
                else if (_inbox.IsCompleted || _stopping) break; // shut down
            }
            while (_inbox.TryTake(out var more)) Admit(more);

            inTurn.Clear();
            try
            {
                if (decode.Count > 0) RunDecode(decode, Finish, inTurn);
                current = RunPrefill(prefill, current, Finish, inTurn);
            }
            catch (Exception e)
            {
                // A bug, not a bad step (those fail alone inside): fail this turn's steps, keep the stage serving.
                LogTurnFailed(_logger, _runtime.Stage.ToString(), e);
                foreach (var p in inTurn)
                {
                    Finish(p);
                    p.Done.TrySetException(e);
                }
                decode.RemoveAll(p => p.Finished);
                if (current is not null && current.Step.Finished) current = null;
            }

            if (deferred.Count > 0)
            {
                var again = deferred.ToList();
                deferred.Clear();
                foreach (var p in again) Admit(p);
            }
            if (early.Count > 0)
            {
                var again = early.OrderBy(p => p.Job.PastLength).ToList();
                early.Clear();
                foreach (var p in again) Admit(p);
            }
        }

        var gone = new ObjectDisposedException(nameof(StageBatcher), $"stage {_runtime.Stage} shut down");
        foreach (var p in decode.Concat(prefill).Concat(deferred).Concat(early)) p.Done.TrySetException(gone);
        current?.Step.Done.TrySetException(gone);
        while (_inbox.TryTake(out var left))
        {
            if (left.Abort is { } abort) abort(gone);
            else left.Done.TrySetException(gone);
        }
    }

    private const int EarlyRecheckMilliseconds = 10;

    /// <summary>Whether a step starts past what the stage holds for its session on the same turn (an earlier step of
    /// the session has not arrived yet), and has not waited for it too long.</summary>
    private bool IsEarly(Pending p) =>
        Leases.TryGet(p.Job.SessionId, out var lease) && p.Job.Epoch == lease.Epoch && p.Job.PastLength > lease.Length
        && Stopwatch.GetElapsedTime(p.Enqueued) < _options.EarlyStepWait;

    /// <summary>Resolves the lease of a step and checks it can run; fails the step (only) when not.</summary>
    private KvLease? Resolve(Pending p, Action<Pending> finish)
    {
        var job = p.Job;
        Exception? error = null;
        if (!Leases.TryGet(job.SessionId, out var lease))
            error = new KvLostException($"session {job.SessionId} holds no KV slot at stage {_runtime.Stage}; reserve first");
        else if (job.Epoch != lease.Epoch)
            error = new KvLostException($"step for session {job.SessionId} belongs to turn {job.Epoch} but its KV slot at stage {_runtime.Stage} was reserved for turn {lease.Epoch}");
        else if (job.PastLength > lease.Length)
            error = new KvLostException(
                $"step for session {job.SessionId} starts at position {job.PastLength} but stage {_runtime.Stage} holds {lease.Length}");
        else if (job.PastLength + job.TokenCount > _runtime.MaxContext)
            error = new ContextOverflowException(job.PastLength + job.TokenCount, _runtime.MaxContext);
        if (error is null) return lease;
        finish(p);
        p.Done.TrySetException(error);
        return null;
    }

    private void RunDecode(List<Pending> decode, Action<Pending> finish, List<Pending> inTurn)
    {
        int take = Math.Min(decode.Count, MicroBatch());
        var rows = new List<(Pending Step, KvLease Lease)>(take);
        inTurn.AddRange(decode.Take(take));
        foreach (var p in decode.Take(take))
            if (Resolve(p, finish) is KvLease lease) rows.Add((p, lease));
        decode.RemoveRange(0, take);
        if (rows.Count == 0) return;

        rows.Sort((a, b) => a.Lease.Slot.CompareTo(b.Lease.Slot));
        var slots = Leases.SnapshotSlots();
        int start = 0;
        for (int i = 1; i <= rows.Count; i++)
        {
            if (i < rows.Count && CanBridge(rows[i - 1].Lease.Slot, rows[i].Lease.Slot, slots)) continue;
            RunDecodeRows(rows.GetRange(start, i - start), slots, finish);
            start = i;
        }
    }

    /// <summary>Most decode rows in this run: the batch limit, or with a pipeline of several stages this stage's share
    /// of the sessions holding a slot (see <see cref="BatcherOptions.PipelineDepth"/>).</summary>
    private int MicroBatch()
    {
        if (_options.PipelineDepth <= 1) return _options.MaxBatch;
        int share = (Leases.Used + _options.PipelineDepth - 1) / _options.PipelineDepth;
        return Math.Clamp(share, 1, _options.MaxBatch);
    }

    private bool CanBridge(int from, int to, KvLease?[] slots)
    {
        if (to - from - 1 > _options.MaxGap) return false;
        for (int s = from + 1; s < to; s++)
            if (slots[s] is { } idle && idle.Length >= _runtime.MaxContext) return false; // no spare position to pad into
        return true;
    }

    private void RunDecodeRows(List<(Pending Step, KvLease Lease)> rows, KvLease?[] slots, Action<Pending> finish)
    {
        var runtime = _runtime;
        int firstSlot = rows[0].Lease.Slot, count = rows[^1].Lease.Slot - firstSlot + 1;
        int hidden = runtime.Config.HiddenSize, vocab = runtime.Config.VocabSize;
        int rowBytes = hidden * Activations.ElementSize(runtime.Compute);

        // Padding rows: an idle slot writes one position at its own cached length (or 0 when free), which is
        // beyond what its session has committed; the session's next step overwrites it.
        var past = new int[count];
        for (int s = 0; s < count; s++) past[s] = slots[firstSlot + s]?.Length ?? 0;
        int[] ids = runtime.Stage.IsFirst ? new int[count] : [];
        Activations? input = runtime.Stage.IsFirst ? null : new Activations(runtime.Compute, count, 1, hidden, new byte[count * rowBytes]);
        foreach (var (step, lease) in rows)
        {
            int r = lease.Slot - firstSlot;
            past[r] = step.Job.PastLength;
            if (runtime.Stage.IsFirst) ids[r] = step.Job.Tokens![0];
            else Buffer.BlockCopy(step.Job.Hidden!.Data, 0, input!.Data, r * rowBytes, rowBytes);
        }
        if (runtime.Stage.IsLast && _logits.Length < count * vocab) _logits = new float[count * vocab];

        long began = Stopwatch.GetTimestamp();
        Activations? output;
        try
        {
            output = runtime.Run(_pool, firstSlot, past, 1, ids, input, _logits);
        }
        catch (Exception e)
        {
            foreach (var (step, _) in rows)
            {
                finish(step);
                step.Done.TrySetException(e);
            }
            return;
        }
        double seconds = Stopwatch.GetElapsedTime(began).TotalSeconds;
        _options.OnRun?.Invoke(count, 1);
        StrataMetrics.StageBatchSize.Record(rows.Count, _tags);
        StrataMetrics.StageStepSeconds.Record(seconds, _tags);
        StrataMetrics.StageTokens.Add(rows.Count, _decodeTags);
        if (count > rows.Count) StrataMetrics.StagePaddingRows.Add(count - rows.Count, _tags);

        var now = DateTime.UtcNow;
        // Every row's outcome first, then all of them at once: the run's size is known to whoever receives one.
        var results = new (Pending Step, Activations? Next, int Token, double Queued, Exception? Error)[rows.Count];
        int succeeded = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            var (step, lease) = rows[i];
            int r = lease.Slot - firstSlot;
            lease.Length = step.Job.PastLength + 1;
            lease.LastUsed = now;
            double queued = Stopwatch.GetElapsedTime(step.Enqueued, began).TotalMilliseconds;
            StrataMetrics.StageQueueSeconds.Record(queued / 1000, _tags);
            try
            {
                Activations? next = null;
                int token = -1;
                if (output is not null)
                {
                    var bytes = new byte[rowBytes];
                    Buffer.BlockCopy(output.Data, r * rowBytes, bytes, 0, rowBytes);
                    next = new Activations(runtime.Compute, 1, 1, hidden, bytes);
                }
                else
                {
                    token = step.Job.Sample?.Invoke(_logits.AsSpan(r * vocab, vocab), lease) ?? -1;
                }
                results[i] = (step, next, token, queued, null);
                succeeded++;
            }
            catch (Exception e)
            {
                results[i] = (step, null, -1, queued, e);
            }
        }
        var run = new StepRun(succeeded);
        foreach (var (step, next, token, queued, error) in results)
        {
            finish(step);
            if (error is not null) step.Done.TrySetException(error);
            else step.Done.TrySetResult(new StepOutcome(next, token, queued, seconds * 1000, rows.Count, run));
        }
    }

    /// <summary>Runs prefill chunks, oldest prompt first, until the turn's token budget is spent. Returns the prompt
    /// still in progress.</summary>
    private Prefill? RunPrefill(Queue<Pending> queue, Prefill? current, Action<Pending> finish, List<Pending> inTurn)
    {
        var runtime = _runtime;
        int budget = _options.PrefillChunk;
        if (current is not null) inTurn.Add(current.Step);
        while (budget > 0)
        {
            if (current is null)
            {
                if (!queue.TryDequeue(out var next)) return null;
                inTurn.Add(next);
                if (Resolve(next, finish) is not KvLease lease) continue;
                current = new Prefill(next, lease, runtime);
            }
            else if (!Leases.TryGet(current.Step.Job.SessionId, out var still) || !ReferenceEquals(still, current.Lease))
            {
                // Released (cancelled turn, expiry) between two chunks: the slot may be someone else's now.
                finish(current.Step);
                current.Step.Done.TrySetException(new KvLostException(
                    $"session {current.Step.Job.SessionId} lost its KV slot at stage {runtime.Stage} during its prefill"));
                current = null;
                continue;
            }

            var job = current.Step.Job;
            int n = Math.Min(budget, job.TokenCount - current.Done);
            int past = job.PastLength + current.Done;
            long began = Stopwatch.GetTimestamp();
            current.QueueMilliseconds ??= Stopwatch.GetElapsedTime(current.Step.Enqueued, began).TotalMilliseconds;
            try
            {
                ReadOnlySpan<int> ids = runtime.Stage.IsFirst ? job.Tokens.AsSpan(current.Done, n) : default;
                Activations? input = null;
                if (!runtime.Stage.IsFirst)
                {
                    input = n == job.TokenCount ? job.Hidden! : Slice(job.Hidden!, current.Done, n);
                }
                if (runtime.Stage.IsLast && _logits.Length < runtime.Config.VocabSize) _logits = new float[runtime.Config.VocabSize];
                var output = runtime.Run(_pool, current.Lease.Slot, [past], n, ids, input, _logits);
                if (output is not null) Buffer.BlockCopy(output.Data, 0, current.Output!, current.Done * current.RowBytes, output.Data.Length);
            }
            catch (Exception e)
            {
                finish(current.Step);
                current.Step.Done.TrySetException(e);
                current = null;
                continue;
            }
            double seconds = Stopwatch.GetElapsedTime(began).TotalSeconds;
            current.RunMilliseconds += seconds * 1000;
            _options.OnRun?.Invoke(1, n);
            StrataMetrics.StageBatchSize.Record(1, _tags);
            StrataMetrics.StageStepSeconds.Record(seconds, _tags);
            StrataMetrics.StageTokens.Add(n, _prefillTags);
            current.Done += n;
            budget -= n;
            current.Lease.Length = past + n;
            current.Lease.LastUsed = DateTime.UtcNow;
            if (current.Done < job.TokenCount) continue;

            var step = current.Step;
            try
            {
                var hidden = current.Output is null ? null
                    : new Activations(runtime.Compute, 1, job.TokenCount, runtime.Config.HiddenSize, current.Output);
                int token = job.Sample is { } sample && runtime.Stage.IsLast ? sample(_logits.AsSpan(0, runtime.Config.VocabSize), current.Lease) : -1;
                StrataMetrics.StageQueueSeconds.Record(current.QueueMilliseconds.Value / 1000, _tags);
                finish(step);
                step.Done.TrySetResult(new StepOutcome(hidden, token, current.QueueMilliseconds.Value, current.RunMilliseconds, 1));
            }
            catch (Exception e)
            {
                finish(step);
                step.Done.TrySetException(e);
            }
            current = null;
        }
        return current;
    }

    private static Activations Slice(Activations a, int firstToken, int tokens)
    {
        int rowBytes = a.Hidden * Activations.ElementSize(a.Type);
        var data = new byte[tokens * rowBytes];
        Buffer.BlockCopy(a.Data, firstToken * rowBytes, data, 0, data.Length);
        return new Activations(a.Type, 1, tokens, a.Hidden, data);
    }

    /// <summary>Stops the batch thread after the run in progress; queued steps fail with
    /// <see cref="ObjectDisposedException"/>, waiting reservations with <see cref="KvAdmissionException"/>. Returns
    /// once the thread has stopped, so the caller may free the KV pool and the runtime.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true; // before admission closes: whoever sees a reservation refused sees a stopping stage
        StrataMetrics.Unregister(this);
        Leases.Close();
        _inbox.CompleteAdding();
        _thread.Join();
        _inbox.Dispose();
    }

    private sealed class Pending(StepJob job)
    {
        public StepJob Job { get; } = job;
        /// <summary>Work for the batch thread between runs instead of a step (a KV copy), and how to fail it.</summary>
        public Action? Control { get; init; }
        public Action<Exception>? Abort { get; init; }
        public bool Finished { get; set; }
        public long Enqueued { get; } = Stopwatch.GetTimestamp();
        public TaskCompletionSource<StepOutcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Prefill(Pending step, KvLease lease, StageRuntime runtime)
    {
        public Pending Step { get; } = step;
        public KvLease Lease { get; } = lease;
        public int RowBytes { get; } = runtime.Config.HiddenSize * Activations.ElementSize(runtime.Compute);
        public byte[]? Output { get; } = runtime.Stage.IsLast ? null
            : new byte[(long)step.Job.TokenCount * runtime.Config.HiddenSize * Activations.ElementSize(runtime.Compute)];
        public int Done { get; set; }
        public double? QueueMilliseconds { get; set; }
        public double RunMilliseconds { get; set; }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "a turn of the batch loop of stage {Stage} failed; its steps fail, the stage goes on")]
    private static partial void LogTurnFailed(ILogger logger, string stage, Exception e);
}
