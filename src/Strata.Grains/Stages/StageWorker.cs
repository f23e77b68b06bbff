using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;

namespace Strata.Grains.Stages;

/// <summary>
/// One loaded stage in a silo: its runtime, its KV pool and the leases that map sessions to KV slots. Loading and
/// every step run on the worker's own thread (never the Orleans scheduler); callers await the results. Steps run
/// one at a time in arrival order, so the steps of one session stay ordered.
/// </summary>
internal sealed class StageWorker : IDisposable
{
    private readonly BlockingCollection<Action> _queue = new();
    private readonly Thread _thread;
    private readonly Dictionary<string, Lease> _leases = new(StringComparer.Ordinal); // guarded by _leaseLock
    private readonly Lock _leaseLock = new();
    private readonly ILogger _logger;
    private StageRuntime? _runtime;
    private KvPool? _pool;
    private bool[] _slotUsed = [];

    public StageWorker(string key, ShardConfig config, ILogger logger)
    {
        Key = key;
        Config = config;
        _logger = logger;
        _thread = new Thread(Loop) { IsBackground = true, Name = $"strata-stage-{config.StageIndex}" };
        _thread.Start();
    }

    public string Key { get; }
    public ShardConfig Config { get; }
    public DeploymentState State { get; private set; } = DeploymentState.Loading;
    public string? Error { get; private set; }
    public string Device => _runtime?.Device.ToString() ?? "";
    public long WeightBytes { get; private set; }
    public long KvBytes => _pool?.TotalBytes ?? 0;
    public Task Loaded { get; private set; } = Task.CompletedTask;

    public int ActiveSessions
    {
        get { lock (_leaseLock) return _leases.Count; }
    }

    /// <summary>Starts loading on the worker thread; <see cref="Loaded"/> completes when done (or failed).</summary>
    public void StartLoad(string packagePath, EngineOptions engine, Func<long, string?> reserveMemory)
    {
        Loaded = Run(() =>
        {
            try
            {
                Load(packagePath, engine, reserveMemory);
                State = DeploymentState.Ready;
            }
            catch (Exception e)
            {
                Error = e.Message;
                State = DeploymentState.Failed;
                _logger.LogError("stage {Key} failed to load: {Error}", Key, e.Message);
            }
            return 0;
        });
    }

    private void Load(string packagePath, EngineOptions engine, Func<long, string?> reserveMemory)
    {
        var c = Config;
        var clock = Stopwatch.StartNew();
        using var model = ModelLoader.Open(packagePath);
        var spec = new StageSpec(c.FirstLayer, c.EndLayer, c.TotalLayers);
        using var tensors = model.OpenTensors(c.FirstLayer, c.EndLayer, spec.IsFirst, spec.IsLast);
        var runtime = StageRuntime.Load(model.Config, tensors, spec, engine with { MaxContext = c.MaxContext }, _logger);
        try
        {
            long kv = runtime.KvBytesPerPosition * c.MaxContext * c.Slots;
            long weights = tensors.Names.Sum(n => tensors.TryGet(n, out var i) ? i.ElementCount * Activations.ElementSize(runtime.Compute) : 0);
            if (reserveMemory(weights + kv) is string refusal)
                throw new InvalidOperationException(refusal);
            WeightBytes = weights;
            _pool = runtime.CreateKvPool(c.Slots);
            _slotUsed = new bool[c.Slots];
            _runtime = runtime;
        }
        catch
        {
            runtime.Dispose();
            throw;
        }
        _logger.LogInformation("stage {Key} ready: layers [{First}, {End}) on {Device} in {Seconds:F1} s",
            Key, c.FirstLayer, c.EndLayer, _runtime.Device, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Reserves a KV slot for <paramref name="sessionId"/>; false when none is free.</summary>
    public bool Reserve(string sessionId)
    {
        lock (_leaseLock)
        {
            if (_leases.ContainsKey(sessionId)) return true;
            int slot = Array.IndexOf(_slotUsed, false);
            if (slot < 0) return false;
            _slotUsed[slot] = true;
            _leases[sessionId] = new Lease(slot);
            return true;
        }
    }

    /// <summary>Frees the session's KV slot.</summary>
    public void Release(string sessionId)
    {
        lock (_leaseLock)
        {
            if (_leases.Remove(sessionId, out var lease)) _slotUsed[lease.Slot] = false;
        }
    }

    /// <summary>Frees leases idle for longer than <paramref name="ttl"/> (their session is gone or idle).</summary>
    public int ExpireIdle(TimeSpan ttl, DateTime now)
    {
        lock (_leaseLock)
        {
            var stale = _leases.Where(kv => now - kv.Value.LastUsed > ttl).Select(kv => kv.Key).ToList();
            foreach (var s in stale) Release(s);
            return stale.Count;
        }
    }

    /// <summary>Runs one step of one session on the worker thread.</summary>
    public Task<StepOutput> Step(StepRequest r) => Run(() => StepNow(r));

    private StepOutput StepNow(StepRequest r)
    {
        var runtime = _runtime ?? throw new StrataException(ErrorCodes.ModelNotReady, $"stage {Key} is {State}: {Error}");
        Lease lease;
        lock (_leaseLock)
        {
            if (!_leases.TryGetValue(r.SessionId, out lease!))
                throw new StrataException(ErrorCodes.InvalidRequest, $"session {r.SessionId} holds no KV slot at stage {Config.StageIndex}; reserve first");
        }
        if (r.PastLength > lease.Length)
            throw new StrataException(ErrorCodes.InvalidRequest,
                $"step for session {r.SessionId} starts at position {r.PastLength} but stage {Config.StageIndex} holds {lease.Length}");

        var clock = Stopwatch.StartNew();
        Activations? hidden = null;
        if (!runtime.Stage.IsFirst)
        {
            var type = r.HiddenType switch
            {
                "fp16" => ComputeType.Float16,
                "fp32" => ComputeType.Float32,
                _ => throw new StrataException(ErrorCodes.InvalidRequest, $"stage {Config.StageIndex}: activation dtype '{r.HiddenType}' is not fp32 or fp16"),
            };
            hidden = new Activations(type, 1, r.TokenCount, runtime.Config.HiddenSize, r.Hidden ?? []);
        }
        float[] logits = runtime.Stage.IsLast ? new float[runtime.Config.VocabSize] : [];
        Activations? output;
        try
        {
            output = runtime.Run(_pool!, lease.Slot, [r.PastLength], r.TokenCount, runtime.Stage.IsFirst ? r.Tokens ?? [] : default, hidden, logits);
        }
        catch (ArgumentException e)
        {
            throw new StrataException(ErrorCodes.InvalidRequest, $"stage {Config.StageIndex}: {e.Message}");
        }
        catch (ContextOverflowException e)
        {
            throw new StrataException(ErrorCodes.ContextOverflow, e.Message);
        }
        lease.Length = r.PastLength + r.TokenCount;
        lease.LastUsed = DateTime.UtcNow;

        int token = -1;
        ulong[] rng = r.RngState;
        if (runtime.Stage.IsLast)
        {
            var wanted = (r.Sampling.Temperature, r.Sampling.TopK, r.Sampling.TopP);
            if (lease.Sampler is null || (lease.Sampler.Params.Temperature, lease.Sampler.Params.TopK, lease.Sampler.Params.TopP) != wanted)
                lease.Sampler = new Sampler(new SamplingParams { Temperature = wanted.Temperature, TopK = wanted.TopK, TopP = wanted.TopP, Seed = 0 });
            var sampler = lease.Sampler;
            if (rng.Length == Xoshiro256StarStar.StateLength) sampler.SetState(rng);
            token = sampler.Sample(logits);
            rng = sampler.GetState();
        }
        return new StepOutput(output, token, rng, clock.Elapsed.TotalMilliseconds);
    }

    private Task<T> Run<T>(Func<T> work)
    {
        // Continuations are not forced onto the thread pool: a grain's await resumes on its activation scheduler
        // anyway, and one hop fewer per stage matters at ~30 ms a step.
        var done = new TaskCompletionSource<T>();
        try
        {
            _queue.Add(() =>
            {
                try { done.SetResult(work()); }
                catch (Exception e) { done.SetException(e); }
            });
        }
        catch (InvalidOperationException)
        {
            done.SetException(new StrataException(ErrorCodes.StageFailed, $"stage {Key} is shutting down"));
        }
        return done.Task;
    }

    private void Loop()
    {
        foreach (var work in _queue.GetConsumingEnumerable()) work();
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _pool?.Dispose();
        _runtime?.Dispose();
        _queue.Dispose();
    }

    private sealed class Lease(int slot)
    {
        public int Slot { get; } = slot;
        public int Length { get; set; }
        public DateTime LastUsed { get; set; } = DateTime.UtcNow;
        public Sampler? Sampler { get; set; }
    }
}

/// <summary>What a step produced: activations for the next stage, or (last stage) the sampled token.</summary>
internal sealed record StepOutput(Activations? Hidden, int Token, ulong[] RngState, double Milliseconds);
