using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Strata.Grains;
using Strata.Grains.Control;

namespace Strata.Cluster.Tests;

/// <summary>
/// The peer watch over real sockets: a peer whose silo port refuses connections is declared dead through the
/// membership; a peer that accepts, one that is not active, the silo itself, and any peer when the silo's own port
/// does not accept (where a refusal means nothing) are left alone.
/// </summary>
public sealed class PeerWatchTests : IDisposable
{
    private readonly TcpListener _self = Listen();
    private readonly TcpListener _alive = Listen();
    private readonly List<Socket> _closed = [];
    private readonly SiloAddress _gone;

    public PeerWatchTests() => _gone = SiloAddress.New(new IPEndPoint(IPAddress.Loopback, ClosedPort()), 3);

    public void Dispose()
    {
        _self.Stop();
        _alive.Stop();
        foreach (var s in _closed) s.Dispose();
    }

    private static TcpListener Listen()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    /// <summary>A loopback port nothing listens on: bound by a socket that does not listen, so connections to it are
    /// refused and no other process (tests run in parallel) can take it while the test runs.</summary>
    private int ClosedPort()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _closed.Add(socket);
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private static SiloAddress At(TcpListener listener, int generation) =>
        SiloAddress.New((IPEndPoint)listener.LocalEndpoint, generation);

    private (PeerWatch Watch, Membership Membership) Watch(SiloAddress self, bool enabled = true, SiloStatus goneStatus = SiloStatus.Active)
    {
        var alive = At(_alive, 2);
        var membership = new Membership(new Dictionary<SiloAddress, SiloStatus>
        {
            [self] = SiloStatus.Active, [alive] = SiloStatus.Active, [_gone] = goneStatus,
        });
        var watch = new PeerWatch(membership, new Local(self), Options.Create(new StrataSiloOptions
        {
            ConfirmDeadPeers = enabled,
            PeerConnectTimeout = TimeSpan.FromSeconds(30), // a busy test machine delays loopback connections, never refuses them
        }),
            NullLogger<PeerWatch>.Instance);
        return (watch, membership);
    }

    [Fact]
    public async Task A_peer_that_refuses_connections_is_declared_dead_and_one_that_accepts_is_not()
    {
        var (watch, membership) = Watch(At(_self, 1));
        Assert.True(await watch.Suspect(_gone));
        Assert.False(await watch.Suspect(At(_alive, 2)));
        Assert.Equal([_gone], membership.Killed);
    }

    [Fact]
    public async Task A_sweep_checks_every_active_peer_and_declares_the_gone_one_dead()
    {
        var (watch, membership) = Watch(At(_self, 1));
        Assert.Equal(1, await watch.Sweep());
        Assert.Equal([_gone], membership.Killed);
    }

    [Fact]
    public async Task A_lost_connection_checks_the_active_silo_at_its_endpoint_only()
    {
        var (watch, membership) = Watch(At(_self, 1));
        Assert.False(await watch.ConnectionLost(_alive.LocalEndpoint)); // it still accepts: a connection can end for other reasons
        Assert.False(await watch.ConnectionLost(new IPEndPoint(IPAddress.Loopback, ClosedPort()))); // no silo of the membership
        Assert.False(await watch.ConnectionLost(new DnsEndPoint("localhost", _gone.Endpoint.Port)));
        Assert.False(await watch.ConnectionLost(null));
        Assert.Empty(membership.Killed);
        Assert.True(await watch.ConnectionLost(new IPEndPoint(IPAddress.Loopback, _gone.Endpoint.Port)));
        Assert.Equal([_gone], membership.Killed);
    }

    [Fact]
    public async Task A_shard_key_silo_string_names_the_peer()
    {
        var (watch, membership) = Watch(At(_self, 1));
        Assert.True(await watch.Suspect(_gone.ToParsableString()));
        Assert.False(await watch.Suspect("not a silo address"));
        Assert.Equal([_gone], membership.Killed);
    }

    [Fact]
    public async Task Nothing_is_declared_dead_when_this_silos_own_port_does_not_accept()
    {
        // An in-memory transport, or a port behind a proxy: a refusal says nothing about the peer.
        var (watch, membership) = Watch(SiloAddress.New(new IPEndPoint(IPAddress.Loopback, ClosedPort()), 1));
        Assert.False(await watch.Suspect(_gone));
        Assert.Equal(0, await watch.Sweep());
        Assert.Empty(membership.Killed);
    }

    [Fact]
    public async Task A_peer_that_is_not_active_the_silo_itself_and_a_disabled_watch_are_left_alone()
    {
        var self = At(_self, 1);
        var (leaving, m1) = Watch(self, goneStatus: SiloStatus.ShuttingDown); // a graceful stop runs its course
        Assert.False(await leaving.Suspect(_gone));
        Assert.False(await leaving.Suspect(self));
        var (disabled, m2) = Watch(self, enabled: false);
        Assert.False(await disabled.Suspect(_gone));
        Assert.Equal(0, await disabled.Sweep());
        Assert.Empty(m1.Killed);
        Assert.Empty(m2.Killed);
    }

    private sealed class Local(SiloAddress address) : ILocalSiloDetails
    {
        public string Name => "self";
        public string ClusterId => "test";
        public string DnsHostName => "localhost";
        public SiloAddress SiloAddress => address;
        public SiloAddress GatewayAddress => address;
    }

    private sealed class Membership(Dictionary<SiloAddress, SiloStatus> members) : IClusterMembershipService
    {
        public List<SiloAddress> Killed { get; } = [];

        public ClusterMembershipSnapshot CurrentSnapshot
        {
            get
            {
                lock (members)
                    return new(members.ToImmutableDictionary(m => m.Key, m => new ClusterMember(m.Key, m.Value, m.Key.ToString())), new MembershipVersion(1));
            }
        }

        public IAsyncEnumerable<ClusterMembershipSnapshot> MembershipUpdates => throw new NotSupportedException();

        public ValueTask Refresh(MembershipVersion minimumVersion = default, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public Task<bool> TryKill(SiloAddress siloAddress)
        {
            lock (members)
            {
                Killed.Add(siloAddress);
                members[siloAddress] = SiloStatus.Dead;
            }
            return Task.FromResult(true);
        }
    }
}
