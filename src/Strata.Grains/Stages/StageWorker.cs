using System.Diagnostics;
using System.Runtime;
using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;
using Strata.Models;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Grains.Stages;

/// <summary>
/// One loaded stage in a silo: its runtime, its KV pool, and the <see cref="StageBatcher"/> that admits sessions to
/// the KV slots and runs their steps in continuous batches on its own thread (never the Orleans scheduler). This
/// class translates between the grain contracts and the engine.
/// </summary>
internal sealed class StageWorker : IDisposable
{
    private readonly ILogger _logger;
    private readonly Lock _life = new();
    private StageRuntime? _runtime;
    private KvPool? _pool;
    private StageBatcher? _batcher;
    private bool _disposed;
    private Action<long> _releaseMemory = _ => { };

    public StageWorker(string key, ShardConfig config, ILogger logger, bool hopBatching = true)
    {
        Key = key;
        Config = config;
        MetricTags = [new("model", config.Model), new("stage", config.StageIndex)];
        Hops = new HopBatcher(MetricTags, hopBatching);
        _logger = logger;
    }

    public string Key { get; }
    public ShardConfig Config { get; }
    /// <summary>The model and stage tags of this stage's metrics.</summary>
    public KeyValuePair<string, object?>[] MetricTags { get; }
    public DeploymentState State { get; private set; } = DeploymentState.Loading;
    public string? Error { get; private set; }
    public string Device => _runtime?.Device.ToString() ?? "";
    public long WeightBytes { get; private set; }
    /// <summary>Bytes taken from the silo's budget (weights and KV), once loaded.</summary>
    public long ReservedBytes { get; private set; }
    public long KvBytes => _pool?.TotalBytes ?? 0;
    public int Slots => _pool?.Slots ?? 0;
    public Task Loaded { get; private set; } = Task.CompletedTask;
    public int ActiveSessions => _batcher?.Leases.Used ?? 0;

    /// <summary>The sessions in a turn here (leases not parked).</summary>
    public string[] RunningSessions() => _batcher?.Leases.ActiveSessions() ?? [];
    public int WaitingSessions => _batcher?.Leases.Waiting ?? 0;
    public int QueuedSteps => _batcher?.QueueDepth ?? 0;

    /// <summary>Gathers the outputs of each decode run for the next stages (one message per run and next shard).</summary>
    public HopBatcher Hops { get; }

    /// <summary>Starts loading on a thread of its own; <see cref="Loaded"/> completes when done (or failed).</summary>
    /// <param name="packagePath">The package folder.</param>
    /// <param name="engine">Device and threads.</param>
    /// <param name="batching">Batch and admission settings.</param>
    /// <param name="reserveMemory">Given the weight bytes, the KV bytes of one slot and the slots wanted, takes
    /// memory from the silo's budget and returns the slots granted (throws when not even one fits).</param>
    /// <param name="releaseMemory">Gives bytes back to the silo's budget (once, when the stage is freed).</param>
    /// <param name="scrub">Takes the silo's paths out of a load error before callers see it.</param>
    public void StartLoad(string packagePath, EngineOptions engine, BatcherOptions batching, Func<long, long, int, int> reserveMemory,
        Action<long> releaseMemory, Func<string, string> scrub)
    {
        _releaseMemory = releaseMemory;
        Loaded = Task.Factory.StartNew(() =>
        {
            try
            {
                Load(packagePath, engine, batching, reserveMemory);
                State = DeploymentState.Ready;
            }
            catch (Exception e)
            {
                Error = scrub(e.Message);
                State = DeploymentState.Failed;
                _logger.LogError("stage {Key} failed to load: {Error}", Key, e.Message);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Load(string packagePath, EngineOptions engine, BatcherOptions batching, Func<long, long, int, int> reserveMemory)
    {
        var c = Config;
        var clock = Stopwatch.StartNew();
        using var model = ModelLoader.Open(packagePath);
        var spec = new StageSpec(c.FirstLayer, c.EndLayer, c.TotalLayers);
        using var tensors = model.OpenTensors(c.FirstLayer, c.EndLayer, spec.IsFirst, spec.IsLast);
        OrtEnvironment.Initialize(engine.IntraOpThreads); // its threads serve every stage: never started at low priority
        var runtime = LowPriority.Run(() => StageRuntime.Load(model.Config, tensors, spec, engine with { MaxContext = c.MaxContext }, _logger));
        StageBatcher? batcher = null;
        KvPool? pool = null;
        try
        {
            // Quantized weights' packed bytes stay bytes in the graph; every float tensor is held in the compute type.
            long weights = tensors.Names.Sum(n => !tensors.TryGet(n, out var i) ? 0
                : i.DType == TensorDType.U8 ? i.ElementCount : i.ElementCount * Activations.ElementSize(runtime.Compute));
            long slotBytes = runtime.KvBytesPerPosition * c.MaxContext;
            int slots = reserveMemory(weights, slotBytes, c.Slots);
            ReservedBytes = weights + slotBytes * slots;
            if (slots < c.Slots)
                _logger.LogWarning("stage {Key}: memory holds KV for {Slots} sessions, fewer than the {Wanted} asked", Key, slots, c.Slots);
            WeightBytes = weights;
            pool = runtime.CreateKvPool(slots);
            batcher = new StageBatcher(runtime, pool, batching, _logger);
            lock (_life)
            {
                if (!_disposed)
                {
                    (_runtime, _pool, _batcher) = (runtime, pool, batcher);
                    batcher = null;
                }
            }
            if (batcher is not null) throw new ObjectDisposedException($"stage {Key} was unloaded while it loaded");
        }
        catch
        {
            batcher?.Dispose();
            pool?.Dispose();
            runtime.Dispose();
            Free();
            throw;
        }
        // Reading and transposing the weights left a large temporary array per tensor behind, and ONNX Runtime holds
        // its own copy now: give them back at once rather than at whatever later full collection, so that a loaded
        // silo's footprint is its weights and KV.
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        _logger.LogInformation("stage {Key} ready: layers [{First}, {End}) on {Device}, {Slots} KV slots, in {Seconds:F1} s",
            Key, c.FirstLayer, c.EndLayer, runtime.Device, pool.Slots, clock.Elapsed.TotalSeconds);
    }

    private StageBatcher Batcher => _batcher ?? throw new StrataException(ErrorCodes.ModelNotReady, $"stage {Key} is {State}{(Error is null ? "" : $": {Error}")}");

    /// <summary>Admits the session to a KV slot, waiting in the stage's queue when all are taken. True when the
    /// session already held its slot (its cache is still there).</summary>
    public async Task<bool> Reserve(string sessionId, long epoch, CancellationToken cancellation)
    {
        try
        {
            return (await Batcher.ReserveAsync(sessionId, epoch, cancellation)).Kept;
        }
        catch (KvAdmissionException e)
        {
            throw new StrataException(ErrorCodes.Overloaded, $"stage {Config.StageIndex} of model '{Config.Model}': {e.Message}; retry later");
        }
        catch (KvSupersededException e)
        {
            throw new StrataException(ErrorCodes.KvLost, $"stage {Config.StageIndex}: {e.Message} (a newer activation of the session runs it)");
        }
    }

    /// <summary>Copies positions of the session's cache out, for a shard of the same stage to import: from
    /// <paramref name="from"/>, <paramref name="count"/> of them or as many as one chunk carries
    /// (<see cref="MaxKvChunkBytes"/>), whichever is fewer.</summary>
    public async Task<KvChunk> ExportKv(string sessionId, int from, int count)
    {
        var batcher = Batcher;
        if (count < 1) throw new StrataException(ErrorCodes.InvalidRequest, $"a KV chunk needs at least one position, asked for {count}");
        count = (int)Math.Min(count, Math.Max(1, MaxKvChunkBytes / batcher.KvBytesPerPosition));
        try
        {
            var data = await batcher.ExportKvAsync(sessionId, from, count);
            return new KvChunk(Config.FirstLayer, Config.EndLayer, (int)(batcher.KvBytesPerPosition / PositionElements(batcher)), count, data);
        }
        catch (Exception e) when (e is KvLostException or NotSupportedException or ArgumentException)
        {
            throw new StrataException(ErrorCodes.KvLost, $"stage {Config.StageIndex}: {e.Message}");
        }
    }

    /// <summary>Appends a chunk that a shard of the same stage exported; checked against this stage's layers, element
    /// type and shape before anything is written.</summary>
    public async Task<int> ImportKv(string sessionId, long epoch, int position, KvChunk chunk)
    {
        var batcher = Batcher;
        long elements = PositionElements(batcher);
        if (chunk.FirstLayer != Config.FirstLayer || chunk.EndLayer != Config.EndLayer)
            throw new StrataException(ErrorCodes.InvalidRequest, $"a KV chunk of layers [{chunk.FirstLayer}, {chunk.EndLayer}) does not fit stage {Config.StageIndex}, layers [{Config.FirstLayer}, {Config.EndLayer})");
        if (chunk.ElementSize * elements != batcher.KvBytesPerPosition)
            throw new StrataException(ErrorCodes.InvalidRequest, $"a KV chunk of {chunk.ElementSize}-byte elements does not fit stage {Config.StageIndex}'s {batcher.KvBytesPerPosition / elements}-byte cache");
        if (chunk.Positions < 1 || chunk.Data is null || chunk.Data.LongLength != chunk.Positions * batcher.KvBytesPerPosition)
            throw new StrataException(ErrorCodes.InvalidRequest, $"a KV chunk of {chunk.Positions} positions carries {chunk.Data?.LongLength ?? 0} bytes, not {chunk.Positions * batcher.KvBytesPerPosition}");
        try
        {
            return await batcher.ImportKvAsync(sessionId, epoch, position, chunk.Data);
        }
        catch (Exception e) when (e is KvLostException or NotSupportedException or ArgumentException)
        {
            throw new StrataException(ErrorCodes.KvLost, $"stage {Config.StageIndex}: {e.Message}");
        }
    }

    /// <summary>Largest KV chunk one message carries (well below Orleans' message limit).</summary>
    public const long MaxKvChunkBytes = 16L << 20;

    /// <summary>Elements one position holds at this stage (all layers, keys and values).</summary>
    private long PositionElements(StageBatcher batcher) =>
        (long)(Config.EndLayer - Config.FirstLayer) * 2 * batcher.Runtime.Config.NumKvHeads * Engine.Graph.StageGraphBuilder.AttentionHeadDim(batcher.Runtime.Config);

    /// <summary>Keeps the session's cache between turns, evictable when another session needs the slot.</summary>
    public void Park(string sessionId) => _batcher?.Leases.Park(sessionId);

    /// <summary>Frees the session's KV slot.</summary>
    public void Release(string sessionId, long epoch = long.MaxValue) => _batcher?.Leases.Release(sessionId, epoch);

    /// <summary>Frees leases idle for longer than <paramref name="ttl"/> (their session is gone or idle).</summary>
    public int ExpireIdle(TimeSpan ttl, DateTime now) => _batcher?.Leases.ExpireIdle(ttl, now) ?? 0;

    /// <summary>Runs one step of one session in the stage's next batch.</summary>
    public async Task<StepOutput> Step(StepRequest r)
    {
        var batcher = Batcher;
        var runtime = batcher.Runtime;
        ulong[] rng = r.RngState;
        RowSampler? sample = runtime.Stage.IsLast && !r.FillOnly ? (logits, lease) => SampleRow(logits, lease, r.Sampling, ref rng) : null;
        var job = ToJob(r, runtime.Stage, runtime.Config, runtime.Compute, Config.StageIndex, sample);
        try
        {
            var outcome = await batcher.StepAsync(job);
            return new StepOutput(outcome.Hidden, outcome.Token, rng, outcome.RunMilliseconds, outcome.Run);
        }
        catch (ArgumentException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, $"stage {Config.StageIndex}: {e.Message}");
        }
        catch (KvLostException e)
        {
            throw new StrataException(ErrorCodes.KvLost, $"stage {Config.StageIndex}: {e.Message}");
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            throw new StrataException(ErrorCodes.StageFailed, $"stage {Config.StageIndex} failed to run the step: {e.Message}");
        }
        catch (ContextOverflowException e)
        {
            throw new StrataException(ErrorCodes.ContextOverflow, e.Message);
        }
        catch (ObjectDisposedException)
        {
            throw new StrataException(ErrorCodes.StageFailed, $"stage {Key} is shutting down");
        }
    }

    /// <summary>
    /// The batcher's job for a step that arrived at this stage, checked before it queues: the session, the sampling
    /// settings and RNG state a sampling step needs, the activations' dtype and byte length (converted to this stage's
    /// type on arrival: an fp16 GPU stage may feed an fp32 CPU stage), the token ids and the positions.
    /// </summary>
    /// <exception cref="StrataException">invalid_request, naming the stage and what was wrong.</exception>
    internal static StepJob ToJob(StepRequest r, StageSpec stage, LlamaConfig config, ComputeType compute, int stageIndex, RowSampler? sample)
    {
        try
        {
            if (string.IsNullOrEmpty(r.SessionId)) throw new ArgumentException("the step names no session");
            if (sample is not null) CheckSampling(r);
            var job = new StepJob
            {
                SessionId = r.SessionId,
                PastLength = r.PastLength,
                Epoch = r.Epoch,
                TokenCount = r.TokenCount,
                Tokens = stage.IsFirst ? r.Tokens ?? [] : null,
                Hidden = stage.IsFirst ? null
                    : new Activations(ParseType(r.HiddenType), 1, r.TokenCount, config.HiddenSize, r.Hidden ?? []).ConvertTo(compute),
                Sample = sample,
            };
            StageBatcher.CheckStep(stage, config, compute, job);
            return job;
        }
        catch (ArgumentException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, $"stage {stageIndex}: {e.Message}");
        }
    }

    // Checked on arrival: on the batch thread a null or bad value would fail the step only after the stage ran it.
    private static void CheckSampling(StepRequest r)
    {
        if (r.Sampling is not { } s) throw new ArgumentException("a sampling step needs sampling settings");
        new SamplingParams { Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP }.Validate();
        if (r.RngState is null || (r.RngState.Length != 0 && r.RngState.Length != Xoshiro256StarStar.StateLength)
            || (r.RngState.Length > 0 && r.RngState.All(w => w == 0)))
            throw new ArgumentException(
                $"the RNG state must be empty or {Xoshiro256StarStar.StateLength} words, not all zero (got {(r.RngState is null ? "none" : $"{r.RngState.Length} words")})");
    }

    private static ComputeType ParseType(string? type) => type switch
    {
        "fp16" => ComputeType.Float16,
        "fp32" => ComputeType.Float32,
        _ => throw new ArgumentException($"activation dtype '{type}' is not fp32 or fp16"),
    };

    /// <summary>Samples on the stage thread with the session's sampler (kept on its lease), restoring and returning
    /// the session's RNG state.</summary>
    private static int SampleRow(ReadOnlySpan<float> logits, KvLease lease, SamplingSpec spec, ref ulong[] rng)
    {
        var wanted = (spec.Temperature, spec.TopK, spec.TopP);
        if (lease.Tag is not Sampler sampler || (sampler.Params.Temperature, sampler.Params.TopK, sampler.Params.TopP) != wanted)
            lease.Tag = sampler = new Sampler(new SamplingParams { Temperature = wanted.Temperature, TopK = wanted.TopK, TopP = wanted.TopP, Seed = 0 });
        if (rng.Length == Xoshiro256StarStar.StateLength) sampler.SetState(rng);
        int token = sampler.Sample(logits);
        rng = sampler.GetState();
        return token;
    }

    /// <summary>Stops the stage and frees its memory; a stage still loading frees itself when its load ends.</summary>
    public void Dispose()
    {
        StageBatcher? batcher;
        lock (_life)
        {
            if (_disposed) return;
            _disposed = true;
            batcher = _batcher;
        }
        if (batcher is null) return; // still loading (it sees _disposed and cleans up) or failed (already freed)
        batcher.Dispose();
        _pool!.Dispose();
        _runtime!.Dispose();
        Free();
    }

    private void Free()
    {
        long bytes = ReservedBytes;
        ReservedBytes = 0;
        if (bytes > 0) _releaseMemory(bytes);
    }
}

/// <summary>What a step produced: activations for the next stage, or (last stage) the sampled token; the decode run
/// it was part of (null for a prefill), whose outputs go on to the next stage together.</summary>
internal sealed record StepOutput(Activations? Hidden, int Token, ulong[] RngState, double Milliseconds, StepRun? Run = null);
