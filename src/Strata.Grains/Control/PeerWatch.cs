using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Strata.Grains.Control;

/// <summary>
/// Declares a peer silo dead as soon as its death is certain, instead of after the membership's missed probes (a few
/// seconds at best). A call that failed to reach a silo (a lost stage, a session or model grain that no longer
/// answers) asks the watch to check that silo, or every active one: a silo whose port refuses TCP connections has no
/// process behind it any more (<c>kill -9</c>, a crash, an OOM kill), and the watch tells the membership so
/// (<see cref="IClusterMembershipService.TryKill"/>). Every silo then hears of it by gossip, the grain directory drops
/// the dead silo's activations, and the next call reactivates them on a live silo. Anything less certain (a
/// connection that times out: a slow or partitioned silo) is left to the membership's probes and votes.
/// <para>Checks are coalesced: one per silo at a time, and a sweep of all at most every quarter of a second. The
/// watch first checks that its own silo port accepts connections; where it does not (an in-memory transport, a port
/// behind a proxy), the watch disables itself rather than read a refusal as a death.</para>
/// </summary>
public sealed partial class PeerWatch(IClusterMembershipService membership, ILocalSiloDetails local, IOptions<StrataSiloOptions> options,
    ILogger<PeerWatch> logger)
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(250);
    private readonly ConcurrentDictionary<SiloAddress, Task<bool>> _checks = new();
    private readonly Lock _sweepLock = new();
    private Task<int> _sweep = Task.FromResult(0);
    private long _sweepStarted;
    private Task<bool>? _usable;
    private volatile bool _timedOut;

    /// <summary>Checks <paramref name="silo"/> (a parsable silo address, as in shard keys): when it is active in the
    /// membership but refuses connections, declares it dead. True when it did.</summary>
    public Task<bool> Suspect(string silo)
    {
        try
        {
            return Suspect(SiloAddress.FromParsableString(silo));
        }
        catch (FormatException)
        {
            return Task.FromResult(false);
        }
    }

    /// <summary>Checks <paramref name="silo"/>: when it is active in the membership but refuses connections,
    /// declares it dead. True when it did.</summary>
    public Task<bool> Suspect(SiloAddress silo)
    {
        if (!options.Value.ConfirmDeadPeers || silo.Equals(local.SiloAddress) || !IsActive(silo)) return Task.FromResult(false);
        var check = _checks.GetOrAdd(silo, s => Check(s));
        if (check.IsCompleted) _checks.TryRemove(new KeyValuePair<SiloAddress, Task<bool>>(silo, check));
        return check;
    }

    /// <summary>An outbound connection to <paramref name="endpoint"/> ended: checks the active silo listening there (a
    /// <c>kill -9</c> resets every connection to the killed process at once, long before a probe or a call misses).
    /// True when it was declared dead.</summary>
    public Task<bool> ConnectionLost(EndPoint? endpoint)
    {
        if (endpoint is not IPEndPoint ip || !options.Value.ConfirmDeadPeers) return Task.FromResult(false);
        var silo = membership.CurrentSnapshot.Members.Values.FirstOrDefault(m =>
            m.Status == SiloStatus.Active && m.SiloAddress.Endpoint.Equals(ip))?.SiloAddress;
        return silo is null ? Task.FromResult(false) : Suspect(silo);
    }

    /// <summary>Checks every other active silo (a call failed and the caller cannot tell whose silo it reached).
    /// Returns how many were declared dead.</summary>
    public Task<int> Sweep()
    {
        if (!options.Value.ConfirmDeadPeers) return Task.FromResult(0);
        lock (_sweepLock)
        {
            long now = Environment.TickCount64;
            if (!_sweep.IsCompleted || now - _sweepStarted < SweepInterval.TotalMilliseconds) return _sweep;
            _sweepStarted = now;
            var peers = membership.CurrentSnapshot.Members.Values
                .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(local.SiloAddress))
                .Select(m => m.SiloAddress).ToArray();
            return _sweep = SweepAll(peers);
        }
    }

    private async Task<int> SweepAll(SiloAddress[] peers) => (await Task.WhenAll(peers.Select(Suspect))).Count(dead => dead);

    private bool IsActive(SiloAddress silo) =>
        membership.CurrentSnapshot.Members.TryGetValue(silo, out var member) && member.Status == SiloStatus.Active;

    private async Task<bool> Check(SiloAddress silo)
    {
        try
        {
            var usable = _usable ??= SelfCheck();
            if (!await usable)
            {
                if (usable.IsCompletedSuccessfully && _timedOut) _ = Interlocked.CompareExchange(ref _usable, null, usable); // ask again next time
                return false;
            }
            if (await Probe(silo.Endpoint) != SocketError.ConnectionRefused || !IsActive(silo)) return false;
            LogRefused(logger, silo.ToParsableString(), silo.Endpoint.ToString());
            return await membership.TryKill(silo);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogCheckFailed(logger, silo.ToParsableString(), e.Message);
            return false;
        }
        finally
        {
            _checks.TryRemove(silo, out _);
        }
    }

    /// <summary>Whether a refusal means anything here: this silo's own port must accept a connection. A self check
    /// that timed out (a busy machine) is asked again at the next check rather than disabling the watch for good.</summary>
    private async Task<bool> SelfCheck()
    {
        var result = await Probe(local.SiloAddress.Endpoint);
        _timedOut = result == SocketError.TimedOut;
        if (result != SocketError.Success && !_timedOut) LogDisabled(logger, local.SiloAddress.Endpoint.ToString(), result.ToString());
        return result == SocketError.Success;
    }

    /// <summary>Opens and closes one TCP connection: Success, ConnectionRefused, TimedOut or another socket error.</summary>
    private async Task<SocketError> Probe(IPEndPoint endpoint)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(options.Value.PeerConnectTimeout);
        try
        {
            await socket.ConnectAsync(endpoint, timeout.Token);
            return SocketError.Success;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode;
        }
        catch (OperationCanceledException)
        {
            return SocketError.TimedOut;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "silo {Silo} refuses connections at {Endpoint}: its process is gone; declaring it dead")]
    private static partial void LogRefused(ILogger logger, string silo, string endpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "checking silo {Silo} failed: {Error}")]
    private static partial void LogCheckFailed(ILogger logger, string silo, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "this silo's own port {Endpoint} does not accept connections ({Result}): dead peers are left to the membership's probes")]
    private static partial void LogDisabled(ILogger logger, string endpoint, string result);
}
