using Strata.Testing;
using Strata.Client;
using Strata.Contracts;
using Strata.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;
using static Strata.EndToEnd.Tests.ClusterProcessTests;

namespace Strata.EndToEnd.Tests;

/// <summary>
/// Chaos with real processes: Redis and four silo processes, a three-stage model without replicas (every kill is a
/// re-plan). For each role a silo can have (a middle stage, the last stage, the session's grain, the model grain),
/// <c>kill -9</c> during prefill and during decode, at a point drawn from the case's seed; the stream must complete
/// token for token like a fault-free one.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output)
{
    public enum Role { MiddleStage, LastStage, SessionSilo, ModelGrainSilo }

    public enum Phase { Prefill, Decode }

    [RedisTheory]
    [InlineData(Role.MiddleStage, Phase.Prefill, 11)]
    [InlineData(Role.MiddleStage, Phase.Decode, 12)]
    [InlineData(Role.LastStage, Phase.Prefill, 21)]
    [InlineData(Role.LastStage, Phase.Decode, 22)]
    [InlineData(Role.SessionSilo, Phase.Prefill, 31)]
    [InlineData(Role.SessionSilo, Phase.Decode, 32)]
    [InlineData(Role.ModelGrainSilo, Phase.Prefill, 41)]
    [InlineData(Role.ModelGrainSilo, Phase.Decode, 42)]
    public async Task Kill_9_of_a_silo_in_each_role_leaves_the_stream_exact(Role role, Phase phase, int seed)
    {
        var random = new Random(seed);
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 4, Package, layers: 3);
        await Deploy(cluster, stages: 3);
        await using var client = await StrataClient.ConnectAsync(cluster.Redis, clusterId: cluster.ClusterId);
        const int tokens = 200;
        int[]? prompt = phase == Phase.Prefill ? Enumerable.Range(0, 300).Select(_ => random.Next(3, 200)).ToArray() : null;
        var reference = await Stream(client, "reference", tokens, promptIds: prompt);

        // Activate the target session first, so that its silo is known before the turn starts.
        var session = client.Orleans.GetGrain<ISessionGrain>("target");
        await session.GetInfo();
        var stages = (await Status(cluster))["stages"]!.AsArray();
        string victimAddress = role switch
        {
            Role.MiddleStage => (string)stages.Single(s => (int)s!["index"]! == 1)!["silo"]!,
            Role.LastStage => (string)stages.Single(s => (int)s!["index"]! == 2)!["silo"]!,
            Role.SessionSilo => await GrainLocation.SiloOf(client.Orleans, session) ?? throw new InvalidOperationException("the session has no activation"),
            _ => await ModelGrainSilo(cluster),
        };
        var victim = cluster.Silos.Single(s => s.Is(victimAddress));
        int killAt = phase == Phase.Decode ? random.Next(4, 60) : 0;
        output.WriteLine($"{role} during {phase}: killing {victim.Name} {(killAt > 0 ? $"after {killAt} tokens" : "as the turn is sent")}");

        Task<List<int>> target;
        if (phase == Phase.Prefill)
        {
            target = Stream(client, "target", tokens, promptIds: prompt);
            victim.Process.Kill();
        }
        else
        {
            target = Stream(client, "target", tokens, n =>
            {
                if (n == killAt) victim.Process.Kill();
                return Task.CompletedTask;
            });
        }
        var streamed = await target;
        Check(victim.Process.HasExited, $"{victim.Name} was not killed (the stream ended first)", cluster);
        Check(streamed.SequenceEqual(reference),
            $"{role}/{phase}: the stream through the kill differs from the fault-free run:\n{string.Join(",", streamed)}\n{string.Join(",", reference)}", cluster);
        var model = await Status(cluster);
        Check((string?)model["state"] == "ready", $"the model should serve after the kill: {model.ToJsonString()}", cluster);
    }
}
