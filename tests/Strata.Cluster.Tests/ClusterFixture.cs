using Orleans.TestingHost;
using Strata.Client;
using Strata.Hosting;
using Strata.Models.Packaging;

namespace Strata.Cluster.Tests;

/// <summary>
/// Three in-process silos (Silo_0..2, all CPU, 1 GB each) sharing a model store with a synthetic 4-layer model
/// imported as a package. Tests deploy under their own model names so they do not disturb each other.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public string Store { get; } = Path.Combine(Path.GetTempPath(), "strata-cluster-" + Guid.NewGuid().ToString("N")[..12]);
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public StrataClient Client { get; private set; } = null!;
    public const string Package = TinyModel.Package;
    public const string StoriesPackage = "stories260K";

    /// <summary>The real stories260K model (models/stories260K, shipped in the repository); the fixture fails without it.</summary>
    private static string FindStories260K()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "stories260K");
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        throw new InvalidOperationException("models/stories260K is missing from this checkout: the real-model tests need it (it ships in the repository)");
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Store);
        TinyModel.ImportInto(Store);
        ModelImporter.Import(FindStories260K(), Path.Combine(Store, StoriesPackage));

        var builder = new InProcessTestClusterBuilder(3);
        string store = Store;
        builder.ConfigureSilo((options, silo) => silo.AddStrata(null, o =>
        {
            o.Memory = "1GB";
            o.ModelStore = store;
            o.Threads = 1;
            o.StepTimeout = TimeSpan.FromSeconds(20);
            o.PrefillChunk = 16; // prompts longer than 16 tokens go in several steps and several chunks
            o.DrainOnShutdown = false;
            o.Calibrate = false; // keeps start-up fast; CalibrationTests measure
        }));
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        Client = StrataClient.FromClusterClient(Cluster.Client);
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        try { Directory.Delete(Store, true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
