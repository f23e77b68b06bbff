namespace Strata.Cli.Tests;

/// <summary><c>strata demo</c>: a whole cluster in the process, started, used and stopped by one command.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class DemoCommandTests
{
    private static string[] DemoFolders() =>
        Directory.GetDirectories(Path.GetTempPath(), "strata-demo-*").Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task Demo_with_defaults_generates_across_two_silos_and_cleans_up()
    {
        var before = DemoFolders();
        // Cli.Run blocks; off the test's synchronization context it cannot starve the awaits inside.
        var r = await Task.Run(() => Cli.Run("demo", "--max-new-tokens", "8")).WaitAsync(ClusterCli.Deadline);
        r.Ok();
        Assert.StartsWith("Once upon a time", r.Out);
        Assert.True(r.Out.TrimEnd().Length > "Once upon a time".Length, r.Out);
        Assert.Contains("[demo] started 2 silos", r.Err);
        Assert.Contains("stage 0 layers [0, 2) on silo-", r.Err);
        Assert.Contains("stage 1 layers [2, 4) on silo-", r.Err);
        Assert.Contains("8 generated", r.Err);
        Assert.Contains("tok/s", r.Err);
        Assert.Contains("[demo] stopped the cluster", r.Err);
        Assert.Equal(before, DemoFolders());
    }

    [Fact]
    public async Task Demo_deploys_a_given_package_on_three_silos()
    {
        using var tmp = new TempDir();
        (await ClusterCli.RunAsync(["synth", "--out", tmp["m"], "--preset", "tiny", "--layers", "3", "--seed", "4"])).Ok();
        (await ClusterCli.RunAsync(["import", tmp["m"], "--out", tmp["pkg"]])).Ok();
        var local = (await ClusterCli.RunAsync(["generate", "--model", tmp["pkg"], "--prompt", "abc", "--max-new-tokens", "6", "--stages", "3"])).Ok();

        var r = (await ClusterCli.RunAsync(["demo", "--model", tmp["pkg"], "--silos", "3", "--prompt", "abc", "--max-new-tokens", "6"])).Ok();
        Assert.Equal(local.Out, r.Out); // greedy: the same text as three local stages
        Assert.Equal(3, Enumerable.Range(0, 3).Count(i => r.Err.Contains($"on silo-{i} ", StringComparison.Ordinal)));
        Assert.True(File.Exists(Path.Combine(tmp["pkg"], "strata-model.json")), "a given package is used in place, not removed");
    }

    [Theory]
    [InlineData("demo --silos 1", "--silos must be between 2 and 16")]
    [InlineData("demo --stages 0", "--stages must be at least 1")]
    [InlineData("demo --model /no/such/folder", "/no/such/folder")]
    public async Task Bad_demo_flags_are_user_errors(string args, string fragment)
    {
        var r = await ClusterCli.RunAsync(args.Split(' '));
        Cli.AssertUserError(r, fragment);
    }
}
