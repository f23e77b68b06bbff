namespace Strata.Engine.Serving;

/// <summary>A session's hold on one KV slot of a stage: which slot, and how many positions it has cached.</summary>
public sealed class KvLease
{
    internal KvLease(string sessionId, int slot)
    {
        SessionId = sessionId;
        Slot = slot;
    }

    /// <summary>The session holding the slot.</summary>
    public string SessionId { get; }

    /// <summary>The slot in the stage's KV pool.</summary>
    public int Slot { get; }

    /// <summary>The session's turn (epoch) this lease was last reserved for: steps of another turn are stale.</summary>
    public long Epoch { get; internal set; }

    /// <summary>Positions cached in the slot (written only by the stage's batch thread).</summary>
    public int Length { get; internal set; }

    /// <summary>Last time a step of the session ran here (UTC).</summary>
    public DateTime LastUsed { get; internal set; } = DateTime.UtcNow;

    /// <summary>The caller's per-session state kept beside the lease (the last stage keeps its sampler here).</summary>
    public object? Tag { get; set; }

    /// <summary>True between turns: the cache is kept for the session's next turn but the slot may be taken by a
    /// waiting session (the session then rebuilds its cache from its history).</summary>
    public bool Parked { get; internal set; }
}

/// <summary>A granted reservation: the lease, and whether it is one the session already held (its cache kept).</summary>
/// <param name="Lease">The lease.</param>
/// <param name="Kept">True when the session already held this slot, so its cached positions are still there.</param>
public readonly record struct KvReservation(KvLease Lease, bool Kept);

/// <summary>Raised when a session cannot be admitted to a stage: the waiting queue is full or the wait ran out.</summary>
public sealed class KvAdmissionException(string message) : Exception(message);

/// <summary>A reservation for a turn older than the one the session's slot is held for: another, newer activation of
/// the session holds it (a session grain activated twice after a silo was lost), and this one must stop.</summary>
public sealed class KvSupersededException(string message) : Exception(message);

/// <summary>How sessions are admitted against a stage's KV slots.</summary>
public sealed record AdmissionOptions
{
    /// <summary>Sessions that may wait for a slot at once; past that a new session is refused at once. 0 = refuse
    /// as soon as every slot is taken.</summary>
    public int QueueLimit { get; init; } = 256;

    /// <summary>How long a session waits for a slot before it is refused.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (QueueLimit < 0) throw new ArgumentException($"admission queue limit must be >= 0, got {QueueLimit}", nameof(QueueLimit));
        if (MaxWait < TimeSpan.Zero) throw new ArgumentException($"admission wait must be >= 0, got {MaxWait}", nameof(MaxWait));
    }
}

/// <summary>
/// The KV slots of one stage and the sessions that hold them. A fixed number of slots is allocated up front, so the
/// KV a running session needs is always there: admission is where memory is bounded. A session between turns is
/// parked: it keeps its cache, but when a new session needs the slot the least recently used parked lease is
/// evicted (its session rebuilds from its history next turn). When every slot is held by a running session a new
/// session waits in a bounded FIFO queue and gets a slot as soon as one is released or parked; past the queue limit
/// or the wait it is refused with <see cref="KvAdmissionException"/>. Slots are handed out lowest first, which keeps
/// busy slots together and batches contiguous. Thread-safe.
/// </summary>
public sealed class KvLeaseTable
{
    private readonly Lock _lock = new();
    private readonly KvLease?[] _slots;
    private readonly Dictionary<string, KvLease> _leases = new(StringComparer.Ordinal);
    private readonly LinkedList<Waiter> _waiters = new();
    private readonly AdmissionOptions _options;
    private long _admitted, _rejected, _evicted;
    private bool _closed;

    /// <summary>Creates a table of <paramref name="slots"/> slots.</summary>
    public KvLeaseTable(int slots, AdmissionOptions? options = null)
    {
        if (slots < 1) throw new ArgumentOutOfRangeException(nameof(slots), "a stage needs at least one KV slot");
        _options = options ?? new AdmissionOptions();
        _options.Validate();
        _slots = new KvLease?[slots];
    }

    /// <summary>Slots in the table.</summary>
    public int Slots => _slots.Length;

    /// <summary>The admission policy.</summary>
    public AdmissionOptions Options => _options;

    /// <summary>Slots held by sessions.</summary>
    public int Used
    {
        get { lock (_lock) return _leases.Count; }
    }

    /// <summary>Sessions waiting for a slot.</summary>
    public int Waiting
    {
        get { lock (_lock) return _waiters.Count; }
    }

    /// <summary>Sessions admitted so far (each reservation that got a slot).</summary>
    public long Admitted => Interlocked.Read(ref _admitted);

    /// <summary>Sessions refused so far (queue full or wait expired).</summary>
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Parked leases evicted so far to admit other sessions.</summary>
    public long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>Gives <paramref name="sessionId"/> a slot, waiting in the queue when none is free. Returns at once
    /// when the session already holds one. The lease is stamped with <paramref name="epoch"/> (the session's turn):
    /// steps that carry another epoch are refused as stale.</summary>
    /// <exception cref="KvAdmissionException">The queue is full, no slot came free within the wait, or the stage is
    /// closing.</exception>
    /// <exception cref="OperationCanceledException">The caller gave up while waiting.</exception>
    public async Task<KvReservation> ReserveAsync(string sessionId, long epoch = 0, CancellationToken cancellation = default)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (_closed) throw new KvAdmissionException("the stage is unloading");
            if (_leases.TryGetValue(sessionId, out var held))
            {
                if (epoch < held.Epoch)
                    throw new KvSupersededException($"session {sessionId}'s KV slot is held for turn {held.Epoch}, newer than turn {epoch}");
                held.Parked = false;
                held.Epoch = epoch;
                held.LastUsed = DateTime.UtcNow;
                return new KvReservation(held, true);
            }
            if (_waiters.Count == 0 && TryTakeSlot(sessionId, epoch) is KvLease lease) return new KvReservation(lease, false);
            if (_waiters.Count >= _options.QueueLimit || _options.MaxWait == TimeSpan.Zero)
            {
                Interlocked.Increment(ref _rejected);
                throw new KvAdmissionException(_options.QueueLimit == 0
                    ? $"all {_slots.Length} KV slots are taken and the stage queues no sessions"
                    : $"all {_slots.Length} KV slots are in use and the admission queue is full ({_waiters.Count} waiting, queue limit {_options.QueueLimit})");
            }
            waiter = new Waiter(sessionId, epoch);
            waiter.Node = _waiters.AddLast(waiter);
        }

        try
        {
            return new KvReservation(await waiter.Granted.Task.WaitAsync(_options.MaxWait, cancellation).ConfigureAwait(false), false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            lock (_lock)
            {
                if (waiter.Node!.List is not null) _waiters.Remove(waiter.Node);
            }
            if (waiter.Granted.Task.IsCompletedSuccessfully)
            {
                // granted while giving up: keep the slot on a timeout (it arrived in time), hand it back on cancel
                if (e is TimeoutException) return new KvReservation(waiter.Granted.Task.Result, false);
                Release(sessionId);
                throw;
            }
            if (e is OperationCanceledException) throw;
            Interlocked.Increment(ref _rejected);
            throw new KvAdmissionException($"no KV slot came free within {_options.MaxWait.TotalSeconds:0.#} s (all {_slots.Length} are in use)");
        }
    }

    /// <summary>Frees the session's slot and hands it to the first waiting session; a session still waiting for a
    /// slot leaves the queue instead (its reservation fails). False when the session had neither.</summary>
    public bool Release(string sessionId) => Release(sessionId, long.MaxValue);

    /// <summary>As <see cref="Release(string)"/>, but a slot held for a turn newer than <paramref name="epoch"/> is
    /// kept (it belongs to a newer activation of the session than the caller).</summary>
    public bool Release(string sessionId, long epoch)
    {
        lock (_lock)
        {
            if (_leases.TryGetValue(sessionId, out var held) && held.Epoch > epoch) return false;
            if (_leases.Remove(sessionId, out var lease))
            {
                _slots[lease.Slot] = null;
                GrantWaiters();
                return true;
            }
            for (var node = _waiters.First; node is not null; node = node.Next)
            {
                if (node.Value.SessionId != sessionId) continue;
                _waiters.Remove(node);
                node.Value.Granted.TrySetException(new KvAdmissionException("the session was released while it waited for a KV slot"));
                return true;
            }
            return false;
        }
    }

    /// <summary>Refuses new reservations and fails every waiting one (the stage is unloading).</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            foreach (var w in _waiters) w.Granted.TrySetException(new KvAdmissionException("the stage is unloading"));
            _waiters.Clear();
        }
    }

    /// <summary>Parks the session's lease between turns: its cache stays until a new session needs the slot.</summary>
    public bool Park(string sessionId)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(sessionId, out var lease)) return false;
            lease.Parked = true;
            lease.LastUsed = DateTime.UtcNow;
            GrantWaiters();
            return true;
        }
    }

    /// <summary>Frees leases unused for longer than <paramref name="ttl"/> (their session is gone); returns how many.</summary>
    public int ExpireIdle(TimeSpan ttl, DateTime now)
    {
        lock (_lock)
        {
            var stale = _leases.Values.Where(l => now - l.LastUsed > ttl).ToList();
            foreach (var lease in stale)
            {
                _leases.Remove(lease.SessionId);
                _slots[lease.Slot] = null;
            }
            if (stale.Count > 0) GrantWaiters();
            return stale.Count;
        }
    }

    /// <summary>The sessions whose lease is not parked: those in a turn (or between its steps) at this stage.</summary>
    public string[] ActiveSessions()
    {
        lock (_lock) return _leases.Values.Where(l => !l.Parked).Select(l => l.SessionId).ToArray();
    }

    /// <summary>The session's lease, if it holds one.</summary>
    public bool TryGet(string sessionId, out KvLease lease)
    {
        lock (_lock) return _leases.TryGetValue(sessionId, out lease!);
    }

    /// <summary>A snapshot of which lease holds each slot (null = free).</summary>
    internal KvLease?[] SnapshotSlots()
    {
        lock (_lock) return (KvLease?[])_slots.Clone();
    }

    private KvLease? TryTakeSlot(string sessionId, long epoch)
    {
        if (_leases.TryGetValue(sessionId, out var held)) return held; // the same session queued twice
        int slot = Array.IndexOf(_slots, null);
        if (slot < 0)
        {
            var victim = _leases.Values.Where(l => l.Parked).MinBy(l => l.LastUsed);
            if (victim is null) return null;
            _leases.Remove(victim.SessionId);
            _slots[victim.Slot] = null;
            slot = victim.Slot;
            Interlocked.Increment(ref _evicted);
        }
        var lease = new KvLease(sessionId, slot) { Epoch = epoch };
        _slots[slot] = lease;
        _leases[sessionId] = lease;
        Interlocked.Increment(ref _admitted);
        return lease;
    }

    private void GrantWaiters()
    {
        while (_waiters.First is { } first)
        {
            if (TryTakeSlot(first.Value.SessionId, first.Value.Epoch) is not KvLease lease) return;
            _waiters.RemoveFirst();
            first.Value.Granted.TrySetResult(lease); // continuations run asynchronously, outside the lock
        }
    }

    private sealed class Waiter(string sessionId, long epoch)
    {
        public string SessionId { get; } = sessionId;
        public long Epoch { get; } = epoch;
        public TaskCompletionSource<KvLease> Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<Waiter>? Node { get; set; }
    }
}
