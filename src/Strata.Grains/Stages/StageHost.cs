using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Engine.Runtime;
using Strata.Engine.Serving;
using Strata.Models.Planning;

namespace Strata.Grains.Stages;

/// <summary>
/// The silo's stages: a singleton that outlives shard grain activations, holds every loaded stage, and accounts
/// their memory against the silo's budget. It reconciles with the model grains every
/// <see cref="StrataSiloOptions.ReconcileInterval"/>: a stage whose deployment no longer names it (superseded by a
/// redeploy or re-plan, or the model unloaded) is unloaded and its memory returned.
/// </summary>
public sealed partial class StageHost : IDisposable
{
    private readonly ConcurrentDictionary<string, StageWorker> _workers = new(StringComparer.Ordinal);
    private readonly StrataSiloOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly Lock _memoryLock = new();
    private long _reserved;
    private readonly Timer _expiry;
    private readonly Timer? _reconcile;
    private readonly IGrainFactory? _grains;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private int _reconciling;

    /// <summary>Creates the host from the silo's options; with <paramref name="grains"/> it reconciles its stages
    /// with the model grains.</summary>
    public StageHost(IOptions<StrataSiloOptions> options, ILoggerFactory loggers, IGrainFactory? grains = null, IHostApplicationLifetime? lifetime = null)
    {
        _options = options.Value;
        _loggers = loggers;
        _logger = loggers.CreateLogger("Strata.StageHost");
        _grains = grains;
        _stopping = lifetime?.ApplicationStopping ?? CancellationToken.None;
        Device = DeviceSpec.Parse(_options.Device);
        Precision = ElementType(_options.Precision, "Strata:Precision");
        MemoryBytes = _options.MemoryBytes;
        // Sessions release their own KV; this catches leases whose session grain vanished with its silo.
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(5).Ticks, _options.SessionKvTtl.Ticks / 2));
        _expiry = new Timer(_ => ExpireIdleLeases(), null, period, period);
        if (grains is not null)
            _reconcile = new Timer(_ => _ = ReconcileAsync(), null, _options.ReconcileInterval, _options.ReconcileInterval);
    }

    /// <summary>Element type of this silo's stages, or null for the device's default.</summary>
    public Engine.Graph.ComputeType? Precision { get; }

    /// <summary>Asks each loaded stage's model grain whether the stage is still part of its deployment and unloads
    /// those that are not. A model grain that cannot be reached (the cluster settling after a loss, storage down)
    /// leaves its stages alone: only a clear "no" unloads. Returns the keys unloaded.</summary>
    public async Task<IReadOnlyList<string>> ReconcileAsync()
    {
        if (_grains is null || Interlocked.Exchange(ref _reconciling, 1) == 1) return [];
        var unloaded = new List<string>();
        try
        {
            foreach (var worker in _workers.Values.ToArray())
            {
                if (_stopping.IsCancellationRequested) break;
                bool owned;
                try
                {
                    owned = await _grains.GetGrain<IModelGrain>(worker.Config.Model).OwnsShard(worker.Key).WaitAsync(_options.ShardProbeTimeout * 4, _stopping);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    continue;
                }
                if (owned) continue;
                LogOrphan(_logger, worker.Key);
                await Unload(worker.Key);
                unloaded.Add(worker.Key);
            }
        }
        finally
        {
            Volatile.Write(ref _reconciling, 0);
        }
        return unloaded;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "stage {Key} is no longer part of its deployment: unloading it")]
    private static partial void LogOrphan(ILogger logger, string key);

    private void ExpireIdleLeases()
    {
        var now = DateTime.UtcNow;
        foreach (var w in _workers.Values) w.ExpireIdle(2 * _options.SessionKvTtl, now);
    }

    /// <summary>This silo's device.</summary>
    public DeviceSpec Device { get; }

    /// <summary>This silo's budget for weights and KV.</summary>
    public long MemoryBytes { get; }

    /// <summary>Bytes taken by loaded stages.</summary>
    public long ReservedBytes
    {
        get { lock (_memoryLock) return _reserved; }
    }

    internal IEnumerable<StageWorker> Workers => _workers.Values;

    /// <summary>The shard keys of the stages this silo holds (loading, ready or failed).</summary>
    public IReadOnlyCollection<string> StageKeys => _workers.Keys.ToArray();

    internal StageWorker? Get(string key) => _workers.GetValueOrDefault(key);

    /// <summary>Resolves a package path inside the model store (<see cref="ModelStore.Resolve"/>).</summary>
    public string Resolve(string packagePath) => Store.Resolve(packagePath);

    /// <summary>The silo's model store.</summary>
    public ModelStore Store => _store ??= new ModelStore(_options.ModelStore);
    private ModelStore? _store;

    /// <summary>An element type setting: fp32, fp16, or empty / null for the default.</summary>
    private static Engine.Graph.ComputeType? ElementType(string? value, string setting) => value switch
    {
        null or "" => null,
        "fp32" => Engine.Graph.ComputeType.Float32,
        "fp16" => Engine.Graph.ComputeType.Float16,
        _ => throw new ArgumentException($"{setting} must be fp32, fp16 or empty, got '{value}'"),
    };

    internal async Task<StageWorker> Start(string key, ShardConfig config)
    {
        // The model grain is the only one that configures shards, and it never reuses a key for another
        // configuration; a stage under this key with another one is an orphan of a deployment record that was lost.
        if (_workers.TryGetValue(key, out var existing) && existing.Config != config) await Unload(key);
        var worker = _workers.GetOrAdd(key, k =>
        {
            var w = new StageWorker(k, config, _loggers.CreateLogger("Strata.Stage"), _options.HopBatching);
            var engine = new EngineOptions
            {
                Device = Device, IntraOpThreads = _options.Threads, MaxContext = config.MaxContext, Precision = Precision,
                KvPrecision = ElementType(config.KvDtype, "the KV dtype"), // null: the stage's own precision
            };
            var batching = new BatcherOptions
            {
                MaxBatch = _options.MaxBatch,
                PrefillChunk = _options.PrefillChunk,
                PipelineDepth = _options.Pipelining ? Math.Max(1, config.Stages) : 1,
                Admission = new AdmissionOptions
                {
                    QueueLimit = config.AdmissionQueue ?? _options.AdmissionQueue,
                    MaxWait = config.AdmissionWait ?? _options.AdmissionWait,
                },
                Tags = w.MetricTags,
            };
            w.StartLoad(Resolve(config.PackagePath), engine, batching, ReserveStage, ReleaseMemory, Store.Scrub);
            return w;
        });
        if (worker.Config != config)
            throw new StrataException(ErrorCodes.InvalidRequest, $"shard {key} is being configured twice at once with different settings");
        return worker;
    }

    /// <summary>Unloads a stage: the run in progress finishes, queued steps and waiting reservations fail, then its
    /// memory returns to the budget. A no-op for a key that is not loaded.</summary>
    internal async Task Unload(string key)
    {
        if (!_workers.TryRemove(key, out var worker)) return;
        await Task.Run(worker.Dispose);
    }

    private void ReleaseMemory(long bytes)
    {
        lock (_memoryLock) _reserved -= bytes;
    }

    /// <summary>Takes a stage's weights and as many KV slots as asked (or as fit) from the budget.</summary>
    private int ReserveStage(long weightBytes, long slotBytes, int wantedSlots)
    {
        lock (_memoryLock)
        {
            long free = MemoryBytes - _reserved;
            long fit = slotBytes <= 0 ? wantedSlots : (free - weightBytes) / slotBytes;
            if (fit < 1)
                throw new InvalidOperationException(
                    $"stage needs {ByteSize.Format(weightBytes + slotBytes)} (weights {ByteSize.Format(weightBytes)} plus KV for one session " +
                    $"{ByteSize.Format(slotBytes)}) but this silo has {ByteSize.Format(free)} of its {ByteSize.Format(MemoryBytes)} budget left " +
                    "(raise --memory, lower the max context or plan more stages)");
            int slots = (int)Math.Min(wantedSlots, fit);
            _reserved += weightBytes + slotBytes * slots;
            return slots;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _expiry.Dispose();
        _reconcile?.Dispose();
        foreach (var w in _workers.Values) w.Dispose();
        _workers.Clear();
    }
}
