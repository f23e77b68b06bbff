using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Cli.Tests;

/// <summary>Runs the command line in-process without blocking (cluster commands await Orleans calls), with a
/// deadline and optional stdin.</summary>
internal static class ClusterCli
{
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    public static async Task<Cli.Result> RunAsync(string[] args, string stdin = "")
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = await CliApp.RunAsync(args, stdout, stderr, new StringReader(stdin)).WaitAsync(Deadline);
        return new Cli.Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Asserts exit code 0, showing stderr when not.</summary>
    public static Cli.Result Ok(this Cli.Result r)
    {
        Assert.True(r.ExitCode == 0, $"exit code {r.ExitCode}, stderr: {r.Err}");
        return r;
    }
}

/// <summary>
/// A real two-silo cluster in the test process (the CLI's own <see cref="EmbeddedCluster"/>: loopback, free ports)
/// with a tiny synthetic model imported into its model store as <see cref="Package"/>.
/// </summary>
public sealed class EmbeddedClusterFixture : IAsyncLifetime
{
    public const string Package = "tiny";

    private readonly TempDir _dir = new();

    public EmbeddedCluster Cluster { get; private set; } = null!;

    public string Store => _dir["store"];

    public string PackagePath => Path.Combine(Store, Package);

    /// <summary>The flags that point a cluster command at this cluster.</summary>
    public string[] Flags => ["--gateway-port", string.Join(',', Cluster.GatewayPorts), "--cluster-id", Cluster.ClusterId];

    public async Task InitializeAsync()
    {
        string source = _dir["src"];
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Seed = 31 }, source);
        ModelImporter.Import(source, PackagePath);
        Cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions
        {
            Silos = 2,
            ModelStore = Store,
            Memory = "512MB",
            ClusterId = "cli-test-" + Guid.NewGuid().ToString("N")[..8],
        }).WaitAsync(ClusterCli.Deadline);
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
        _dir.Dispose();
    }
}

/// <summary>Tests that start in-process clusters share the two cores one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class EmbeddedClusterCollection : ICollectionFixture<EmbeddedClusterFixture>
{
    public const string Name = "embedded cluster";
}
