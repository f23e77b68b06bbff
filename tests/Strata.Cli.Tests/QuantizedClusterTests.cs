namespace Strata.Cli.Tests;

/// <summary>A quantized package deployed on the two-silo cluster streams what local generation gives.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class QuantizedClusterTests(EmbeddedClusterFixture fx)
{
    private Task<Cli.Result> Run(string[] args) => ClusterCli.RunAsync([.. args, .. fx.Flags]);

    [Fact]
    public async Task An_int4_package_deploys_over_two_silos_and_generates_like_locally()
    {
        string model = SharedModels.Stories260K;
        const string name = "stories-int4";
        (await ClusterCli.RunAsync(["import", model, "--out", Path.Combine(fx.Store, name), "--quant", "int4", "--force"])).Ok();
        var deploy = (await Run(["cluster", "deploy", "--model", name, "--stages", "2", "--max-context", "128"])).Ok();
        Assert.Contains($"model {name}: ready, version 1, 2 stage(s), 2 shard(s)", deploy.Out);

        var status = (await Run(["cluster", "status", "--model", name, "--json"])).Ok().Json();
        var stages = status["models"]!.AsArray().Single()!["stages"]!.AsArray();
        // stories260K is 1 MB of fp32 weights; int4 projections leave the float embedding and head (about 0.13 MB each).
        Assert.All(stages, s => Assert.InRange((long)s!["weight_bytes"]!, 1, 400_000));

        string[] sampling = ["--prompt", "Once upon a time", "--max-new-tokens", "16", "--json"];
        var remote = (await Run(["generate", "--cluster", "--model", name, .. sampling])).Ok();
        var local = (await ClusterCli.RunAsync(["generate", "--model", Path.Combine(fx.Store, name), "--stages", "2", "--max-context", "128", .. sampling])).Ok();
        Assert.Equal(local.Out, remote.Out);
    }
}
