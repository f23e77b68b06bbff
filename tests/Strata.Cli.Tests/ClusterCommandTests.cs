using Strata.Client;

namespace Strata.Cli.Tests;

/// <summary><c>strata cluster deploy|status</c>, <c>generate --cluster</c> and <c>chat</c> against a running
/// two-silo cluster.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class ClusterCommandTests(EmbeddedClusterFixture fx)
{
    private Task<Cli.Result> Run(string[] args, string stdin = "") => ClusterCli.RunAsync([.. args, .. fx.Flags], stdin);

    [Fact]
    public async Task Deploy_status_generate_and_chat_on_two_silos_match_local_generation()
    {
        // Relative to the silos' model store; the name defaults to the folder's.
        var deploy = (await Run(["cluster", "deploy", "--model", EmbeddedClusterFixture.Package, "--stages", "2", "--max-context", "256"])).Ok();
        Assert.Contains($"model {EmbeddedClusterFixture.Package}: ready, version 1, 2 stage(s), 2 shard(s)", deploy.Out);
        Assert.Contains("silo-0", deploy.Out);
        Assert.Contains("silo-1", deploy.Out);

        var status = (await Run(["cluster", "status", "--model", EmbeddedClusterFixture.Package, "--json"])).Ok().Json();
        Assert.Equal(2, status["silos"]!.AsArray().Count);
        Assert.All(status["silos"]!.AsArray(), s => Assert.Equal("active", (string)s!["status"]!));
        var model = status["models"]!.AsArray().Single()!;
        Assert.Equal("ready", (string)model["state"]!);
        var stages = model["stages"]!.AsArray().Select(s => s!.AsObject()).ToArray();
        Assert.Equal(2, stages.Length);
        Assert.Equal([0, 1], stages.Select(s => (int)s["first_layer"]!));
        Assert.Equal([1, 2], stages.Select(s => (int)s["end_layer"]!));
        Assert.Equal(2, stages.Select(s => (string)s["silo"]!).Distinct().Count());
        Assert.All(stages, s => Assert.Equal("ready", (string)s["state"]!));
        Assert.All(stages, s => Assert.True((long)s["weight_bytes"]! > 0 && (long)s["kv_bytes"]! > 0));

        const string prompt = "The quick brown fox";
        string[] sampling = ["--prompt", prompt, "--max-new-tokens", "12", "--json"];
        var remote = (await Run(["generate", "--cluster", "--model", EmbeddedClusterFixture.Package, .. sampling])).Ok();
        var local = (await ClusterCli.RunAsync(["generate", "--model", fx.PackagePath, "--stages", "2", "--max-context", "256", .. sampling])).Ok();
        Assert.Equal(local.Out, remote.Out);
        Assert.Equal(["prompt_ids", "generated_ids", "text", "stop_reason"], remote.Json().Select(kv => kv.Key));

        // Two lines, two turns of one session; the first turn is the same greedy continuation.
        var chat = (await Run(["chat", "--model", EmbeddedClusterFixture.Package, "--max-new-tokens", "12"], $"{prompt}\n and then\n")).Ok();
        Assert.StartsWith((string)remote.Json()["text"]! + "\n", chat.Out);
        Assert.Equal(2, chat.Err.Split('\n').Count(l => l.Contains(" generated; ", StringComparison.Ordinal)));
        Assert.True(chat.Out.Length > ((string)remote.Json()["text"]!).Length + 2, chat.Out);
    }

    [Fact]
    public async Task Status_without_a_model_lists_silos_and_says_how_to_name_one()
    {
        var r = (await Run(["cluster", "status"])).Ok();
        Assert.Contains("2 silo(s)", r.Out);
        Assert.Contains("strata cluster status --model NAME", r.Out);
    }

    [Fact]
    public async Task Generating_from_a_model_that_is_not_deployed_names_it()
    {
        var r = await Run(["generate", "--cluster", "--model", "never-deployed", "--prompt", "hi"]);
        Cli.AssertUserError(r, "never-deployed", "not deployed");
    }

    [Fact]
    public async Task Deploying_a_missing_package_is_a_user_error_naming_it()
    {
        var r = await Run(["cluster", "deploy", "--model", "no-such-package", "--stages", "2"]);
        Cli.AssertUserError(r, "no-such-package");
    }

    [Fact]
    public async Task Chat_stops_at_exit()
    {
        var r = (await Run(["chat", "--model", "never-deployed"], "/exit\nthis line is never sent\n")).Ok();
        Assert.Equal("", r.Out);
    }
}

/// <summary>Errors that need no cluster.</summary>
public sealed class ClusterErrorTests
{
    [Fact]
    public async Task Status_of_a_cluster_that_is_not_there_says_so()
    {
        int port = FreePorts.Take(1)[0];
        var r = await ClusterCli.RunAsync(["cluster", "status", "--gateway-port", port.ToString()]);
        Cli.AssertUserError(r, "cannot reach the cluster", $"127.0.0.1:{port}", "is a silo running?");
    }

    [Theory]
    [InlineData("cluster status --gateway-port 0", "--gateway-port '0'")]
    [InlineData("cluster status --redis localhost:6379 --gateway-port 30000", "exclude each other")]
    [InlineData("cluster deploy --model m --stages none", "--stages 'none'")]
    [InlineData("cluster deploy --model m --kv-dtype int8", "--kv-dtype must be fp16 or fp32")]
    [InlineData("gateway --otlp-endpoint ftp://collector:4317", "--otlp-endpoint needs an http(s) URL")]
    [InlineData("gateway --otlp-endpoint http://localhost:4317 --trace-sample 2", "--trace-sample needs a fraction from 0 to 1")]
    [InlineData("generate --model m --prompt p --session s", "need --cluster")]
    [InlineData("generate --cluster --model m --prompt p --stages 2", "--stages applies to local generation")]
    [InlineData("cluster status --no-such-flag", "--no-such-flag")]
    [InlineData("chat", "--model")]
    public async Task Bad_flags_are_user_errors(string args, string fragment)
    {
        var r = await ClusterCli.RunAsync(args.Split(' '));
        Cli.AssertUserError(r, fragment);
    }
}
