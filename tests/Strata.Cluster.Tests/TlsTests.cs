using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Strata.Cli;
using Strata.Client;
using Strata.Contracts;
using Strata.Contracts.Security;
using Strata.Hosting;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Cluster.Tests;

/// <summary>Mutual TLS inside the cluster: with it on, only holders of the cluster's certificates join or call.</summary>
public sealed class TlsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-tls-test-" + Guid.NewGuid().ToString("N")[..8]);
    private EmbeddedCluster _cluster = null!;
    private string Certs => Path.Combine(_dir, "certs");

    public async Task InitializeAsync()
    {
        CertificateAuthority.Create(Certs);
        Directory.CreateDirectory(Path.Combine(_dir, "store"));
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Seed = 3 }, Path.Combine(_dir, "src"));
        ModelImporter.Import(Path.Combine(_dir, "src"), Path.Combine(_dir, "store", "tiny"));
        _cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions
        {
            Silos = 2, ModelStore = Path.Combine(_dir, "store"), Memory = "256MB", Tls = Certs,
            ClusterId = "tls-" + Guid.NewGuid().ToString("N")[..8],
        });
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<StrataClient> Connect(ClusterTls? tls) =>
        StrataClient.ConnectAsync(null, [.. _cluster.GatewayPorts], _cluster.ClusterId, tls).WaitAsync(TimeSpan.FromMinutes(1));

    [Fact]
    public async Task Silos_join_each_other_and_a_client_with_the_cluster_certificate_calls_grains()
    {
        // Two silos started and saw each other: silo-to-silo TLS works.
        foreach (var role in new[] { ClusterRole.Client, ClusterRole.Admin })
        {
            await using var client = await Connect(ClusterTls.Load(Certs, role));
            var status = await client.GetModelStatusAsync("none");
            Assert.Equal(DeploymentState.NotDeployed, status.State);
        }
    }

    [Fact]
    public async Task A_client_without_a_certificate_or_with_a_foreign_one_cannot_connect()
    {
        var plain = await Assert.ThrowsAsync<ClusterUnreachableException>(() => Connect(null));
        Assert.Contains("certificates", plain.Message);
        string foreign = Path.Combine(_dir, "foreign");
        CertificateAuthority.Create(foreign);
        await Assert.ThrowsAsync<ClusterUnreachableException>(() => Connect(ClusterTls.Load(foreign, ClusterRole.Client)));
    }

    [Fact]
    public async Task A_silo_without_the_cluster_certificate_cannot_join()
    {
        int[] ports = FreePorts.Take(2);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
        builder.UseOrleans(silo =>
        {
            silo.UseStrataClustering(new ClusteringSettings
            {
                SiloPort = ports[0], GatewayPort = ports[1], PrimarySiloPort = _cluster.SiloPorts[0], ClusterId = _cluster.ClusterId,
            });
            silo.AddStrata(null, o => { o.ModelStore = Path.Combine(_dir, "store"); o.Memory = "256MB"; o.DrainOnShutdown = false; o.Calibrate = false; });
        });
        using var intruder = builder.Build();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await Assert.ThrowsAnyAsync<Exception>(() => intruder.StartAsync(limit.Token));
        var members = _cluster.Silos[0].Services.GetRequiredService<IClusterMembershipService>().CurrentSnapshot.Members.Values;
        Assert.Equal(2, members.Count(m => m.Status == SiloStatus.Active));
        Assert.DoesNotContain(members, m => m.SiloAddress.Endpoint.Port == ports[0] && m.Status == SiloStatus.Active);
        try { await intruder.StopAsync(TimeSpan.FromSeconds(5)); } catch (Exception e) when (e is OperationCanceledException or OrleansException or InvalidOperationException) { /* it never started */ }
    }

    [Fact]
    public async Task Cluster_control_needs_the_admin_certificate_and_the_client_certificate_serves_sessions()
    {
        await using var user = await Connect(ClusterTls.Load(Certs, ClusterRole.Client));
        var denied = await Assert.ThrowsAsync<StrataException>(() => user.DeployAsync("t", new DeployRequest("tiny", 1, 64, 2)));
        Assert.Equal(ErrorCodes.Forbidden, denied.Code);
        Assert.Contains("admin certificate", denied.Message);

        // A token the client signs itself proves nothing: its certificate is not an administrator's.
        var forged = ControlToken.Create(ClusterTls.Load(Certs, ClusterRole.Client), _cluster.ClusterId, DateTimeOffset.UtcNow);
        RequestContext.Set(ControlToken.Key, forged);
        try
        {
            var again = await Assert.ThrowsAsync<StrataException>(() => user.Orleans.GetGrain<IModelGrain>("t").Scale(2));
            Assert.Equal(ErrorCodes.Forbidden, again.Code);
        }
        finally
        {
            RequestContext.Remove(ControlToken.Key);
        }

        await using var admin = await Connect(ClusterTls.Load(Certs, ClusterRole.Admin));
        var status = await admin.DeployAsync("t", new DeployRequest("tiny", 1, 64, 2), timeout: TimeSpan.FromMinutes(1));
        Assert.Equal(DeploymentState.Ready, status.State);

        // The client streams from sessions (what the gateway does), but cannot drive a shard itself.
        int tokens = 0;
        await foreach (var chunk in user.GenerateAsync("tls-s1", new GenerateRequest { Model = "t", Prompt = "hi", MaxNewTokens = 3 })) tokens += chunk.TokenIds.Length;
        Assert.Equal(3, tokens);
        var shard = await Assert.ThrowsAsync<StrataException>(() => user.Orleans.GetGrain<IShardGrain>(status.Stages[0].ShardKey).GetStatus());
        Assert.Equal(ErrorCodes.Forbidden, shard.Code);
    }

    [Fact]
    public async Task A_client_connected_with_the_client_certificate_controls_the_cluster_once_given_the_admin_one()
    {
        // What the gateway does for its admin keys: connect as a client, sign control calls with admin.pfx.
        await using var gateway = await Connect(ClusterTls.Load(Certs, ClusterRole.Client));
        Assert.False(gateway.CanControl);
        Assert.Throws<ArgumentException>(() => gateway.WithControlCertificate(ClusterTls.Load(Certs, ClusterRole.Client)));
        gateway.WithControlCertificate(ClusterTls.Load(Certs, ClusterRole.Admin));
        Assert.True(gateway.CanControl);
        var status = await gateway.DeployAsync("t-gw", new DeployRequest("tiny", 1, 64, 2), timeout: TimeSpan.FromMinutes(1));
        Assert.Equal(DeploymentState.Ready, status.State);
        // The shard stays out of its reach: the admin certificate signs control calls, not shard calls.
        var shard = await Assert.ThrowsAsync<StrataException>(() => gateway.Orleans.GetGrain<IShardGrain>(status.Stages[0].ShardKey).GetStatus());
        Assert.Equal(ErrorCodes.Forbidden, shard.Code);
    }

    [Fact]
    public void Certificate_files_are_checked_when_loaded()
    {
        Assert.Throws<InvalidDataException>(() => ClusterTls.Load(Path.Combine(_dir, "nowhere"), ClusterRole.Silo));
        string mixed = Path.Combine(_dir, "mixed");
        Directory.CreateDirectory(mixed);
        File.Copy(Path.Combine(Certs, "ca.crt"), Path.Combine(mixed, "ca.crt"));
        File.Copy(Path.Combine(Certs, "client.pfx"), Path.Combine(mixed, "silo.pfx")); // a client certificate named as a silo's
        var e = Assert.Throws<InvalidDataException>(() => ClusterTls.Load(mixed, ClusterRole.Silo));
        Assert.Contains("is not a Silo certificate", e.Message);
        Assert.Throws<IOException>(() => CertificateAuthority.Create(Certs)); // never overwrites a set
    }
}
