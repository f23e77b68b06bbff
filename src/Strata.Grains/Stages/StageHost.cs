using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Engine.Runtime;
using Strata.Engine.Serving;
using Strata.Models.Planning;

namespace Strata.Grains.Stages;

/// <summary>
/// The silo's stages: a singleton that outlives shard grain activations, holds every loaded stage, and accounts
/// their memory against the silo's budget.
/// </summary>
public sealed class StageHost : IDisposable
{
    private readonly ConcurrentDictionary<string, StageWorker> _workers = new(StringComparer.Ordinal);
    private readonly StrataSiloOptions _options;
    private readonly ILoggerFactory _loggers;
    private readonly Lock _memoryLock = new();
    private long _reserved;
    private readonly Timer _expiry;

    /// <summary>Creates the host from the silo's options.</summary>
    public StageHost(IOptions<StrataSiloOptions> options, ILoggerFactory loggers)
    {
        _options = options.Value;
        _loggers = loggers;
        Device = DeviceSpec.Parse(_options.Device);
        MemoryBytes = _options.MemoryBytes;
        // Sessions release their own KV; this catches leases whose session grain vanished with its silo.
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(5).Ticks, _options.SessionKvTtl.Ticks / 2));
        _expiry = new Timer(_ => ExpireIdleLeases(), null, period, period);
    }

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

    internal StageWorker? Get(string key) => _workers.GetValueOrDefault(key);

    /// <summary>Resolves a package path against the model store.</summary>
    public string Resolve(string packagePath) =>
        Path.IsPathRooted(packagePath) ? packagePath : Path.GetFullPath(Path.Combine(_options.ModelStore, packagePath));

    internal StageWorker Start(string key, ShardConfig config)
    {
        var worker = _workers.GetOrAdd(key, k =>
        {
            var w = new StageWorker(k, config, _loggers.CreateLogger("Strata.Stage"));
            var engine = new EngineOptions { Device = Device, IntraOpThreads = _options.Threads, MaxContext = config.MaxContext };
            var batching = new BatcherOptions
            {
                MaxBatch = _options.MaxBatch,
                PrefillChunk = _options.PrefillChunk,
                Admission = new AdmissionOptions
                {
                    QueueLimit = config.AdmissionQueue ?? _options.AdmissionQueue,
                    MaxWait = config.AdmissionWait ?? _options.AdmissionWait,
                },
                Tags = w.MetricTags,
            };
            w.StartLoad(Resolve(config.PackagePath), engine, batching, ReserveStage, ReleaseMemory);
            return w;
        });
        if (worker.Config != config)
            throw new StrataException(ErrorCodes.InvalidRequest, $"shard {key} is already loaded with another configuration");
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
        foreach (var w in _workers.Values) w.Dispose();
        _workers.Clear();
    }
}
