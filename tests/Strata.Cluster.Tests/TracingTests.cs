using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Orleans.TestingHost;
using Strata.Client;
using Strata.Contracts;
using Strata.Hosting;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Cluster.Tests;

/// <summary>
/// One request is one trace: the client's span, the session's turn and steps, and every stage's step with its queue
/// wait and compute, linked parent to child through the grain calls. Spans are collected by OpenTelemetry's
/// in-memory exporter with Strata's own tracing setup (sources and parent-based sampler).
/// </summary>
public sealed class TracingTests : IAsyncLifetime
{
    private readonly string _store = Path.Combine(Path.GetTempPath(), "strata-tracing-" + Guid.NewGuid().ToString("N")[..12]);
    private InProcessTestCluster _cluster = null!;

    public async Task InitializeAsync()
    {
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = 3, Seed = 8 }, Path.Combine(_store, "src"));
        ModelImporter.Import(Path.Combine(_store, "src"), Path.Combine(_store, "t3"));
        var builder = new InProcessTestClusterBuilder(2);
        string store = _store;
        builder.ConfigureSilo((_, silo) => silo.AddStrata(null, o => { o.Memory = "512MB"; o.ModelStore = store; o.Threads = 1; o.DrainOnShutdown = false; o.Calibrate = false; }));
        builder.ConfigureClient(client => client.AddActivityPropagation());
        _cluster = builder.Build();
        await _cluster.DeployAsync();
        await StrataClient.FromClusterClient(_cluster.Client).DeployAsync("t3", new DeployRequest("t3", 3, 64, 2), timeout: TimeSpan.FromMinutes(2));
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        try { Directory.Delete(_store, true); } catch (IOException) { }
    }

    private static GenerateRequest Request => new() { Model = "t3", Prompt = "abc", MaxNewTokens = 3, IgnoreEos = true };

    [Fact]
    public async Task A_traced_request_is_one_trace_through_the_session_and_every_stage()
    {
        var spans = new List<Activity>();
        using (var tracer = StrataTracingSetup.Configure(Sdk.CreateTracerProviderBuilder(), sampleRatio: 0).AddInMemoryExporter(spans).Build())
        {
            var client = StrataClient.FromClusterClient(_cluster.Client);
            // A caller that traces (a sampled parent, here started by hand) is followed even at ratio 0.
            using var parent = new Activity("test.parent").SetIdFormat(ActivityIdFormat.W3C);
            parent.ActivityTraceFlags = ActivityTraceFlags.Recorded;
            parent.Start();
            int tokens = 0;
            await foreach (var chunk in client.GenerateAsync("traced", Request)) tokens += chunk.TokenIds.Length;
            Assert.Equal(3, tokens);
            tracer!.ForceFlush();
        }

        var byId = spans.ToDictionary(s => s.SpanId);
        var generate = spans.Single(s => s.DisplayName == "strata.generate");
        var trace = spans.Where(s => s.TraceId == generate.TraceId).ToList();
        Assert.Equal(spans.Count, trace.Count); // one trace
        Activity Ancestor(Activity span, string name)
        {
            for (var s = span; byId.TryGetValue(s.ParentSpanId, out var p); s = p)
                if (p.DisplayName == name) return p;
            throw new Xunit.Sdk.XunitException($"span {span.DisplayName} ({string.Join(", ", span.Tags)}) has no ancestor '{name}' in the trace");
        }

        Assert.Equal(ActivityKind.Client, generate.Kind);
        Assert.Equal("traced", generate.GetTagItem("strata.session"));
        var turn = trace.Single(s => s.DisplayName == "session.turn");
        Assert.Same(generate, Ancestor(turn, "strata.generate"));
        var steps = trace.Where(s => s.DisplayName == "session.step").ToList();
        Assert.Equal(3, steps.Count); // the prompt's step and two decode steps (the third token comes with the second)
        Assert.All(steps, s => Assert.Same(turn, Ancestor(s, "session.turn")));

        var stageSteps = trace.Where(s => s.DisplayName == "stage.step").ToList();
        Assert.Equal(3 * steps.Count, stageSteps.Count);
        foreach (var step in steps)
        {
            var chain = stageSteps.Where(s => Ancestor(s, "session.step") == step).ToDictionary(s => (int)s.GetTagItem("strata.stage")!);
            Assert.Equal([0, 1, 2], chain.Keys.Order());
            // Each stage's step is a descendant of the previous stage's (the chain of grain calls).
            Assert.Same(chain[0], Ancestor(chain[1], "stage.step"));
            Assert.Same(chain[1], Ancestor(chain[2], "stage.step"));
            foreach (var s in chain.Values)
            {
                Assert.True((double)s.GetTagItem("strata.compute_ms")! > 0, "compute time is recorded");
                Assert.True((double)s.GetTagItem("strata.queue_ms")! >= 0, "queue wait is recorded");
            }
            Assert.NotNull(chain[0].GetTagItem("strata.hop_ms"));
            Assert.Null(chain[2].GetTagItem("strata.hop_ms")); // the last stage samples; no hop after it
        }
        // The hops between them are Orleans' grain-call spans, in the same trace.
        Assert.Contains(trace, s => s.Source.Name == "Microsoft.Orleans.Application");
    }

    [Fact]
    public async Task At_ratio_zero_a_request_without_a_sampled_parent_records_nothing()
    {
        var spans = new List<Activity>();
        using (var tracer = StrataTracingSetup.Configure(Sdk.CreateTracerProviderBuilder(), sampleRatio: 0).AddInMemoryExporter(spans).Build())
        {
            await foreach (var _ in StrataClient.FromClusterClient(_cluster.Client).GenerateAsync("untraced", Request)) { }
            tracer!.ForceFlush();
        }
        Assert.DoesNotContain(spans, s => s.Source.Name == StrataTracing.SourceName);
    }

    [Fact]
    public async Task Steps_that_travel_batched_between_stages_each_stay_in_their_own_trace()
    {
        var client = StrataClient.FromClusterClient(_cluster.Client);
        await client.DeployAsync("t3-batch", new DeployRequest("t3", 3, 64, 6), timeout: TimeSpan.FromMinutes(2));
        var spans = new List<Activity>();
        var hops = new List<int>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "strata_stage_hop_steps") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<int>((_, value, _, _) => { lock (hops) hops.Add(value); });
        listener.Start();
        var parents = new ActivityTraceId[6];
        using (var tracer = StrataTracingSetup.Configure(Sdk.CreateTracerProviderBuilder(), sampleRatio: 0).AddInMemoryExporter(spans).Build())
        {
            await Task.WhenAll(Enumerable.Range(0, 6).Select(async i =>
            {
                await Task.Yield();
                using var parent = new Activity("test.parent").SetIdFormat(ActivityIdFormat.W3C);
                parent.ActivityTraceFlags = ActivityTraceFlags.Recorded;
                parent.Start();
                parents[i] = parent.TraceId;
                await foreach (var _ in client.GenerateAsync($"batched-{i}", Request with { Model = "t3-batch", MaxNewTokens = 12 })) { }
            })).WaitAsync(TimeSpan.FromMinutes(2));
            tracer!.ForceFlush();
        }
        lock (hops) Assert.Contains(hops, n => n > 1); // some steps did travel together

        var byId = spans.ToDictionary(s => s.SpanId);
        Activity? Ancestor(Activity span, string name)
        {
            for (var s = span; byId.TryGetValue(s.ParentSpanId, out var p); s = p)
                if (p.DisplayName == name) return p;
            return null;
        }
        foreach (var traceId in parents)
        {
            var trace = spans.Where(s => s.TraceId == traceId).ToList();
            var steps = trace.Where(s => s.DisplayName == "session.step").ToList();
            Assert.NotEmpty(steps);
            var stageSteps = trace.Where(s => s.DisplayName == "stage.step").ToList();
            Assert.Equal(3 * steps.Count, stageSteps.Count); // no step of this request was left out or put in another trace
            foreach (var step in steps)
            {
                var chain = stageSteps.Where(s => Ancestor(s, "session.step") == step).ToDictionary(s => (int)s.GetTagItem("strata.stage")!);
                Assert.Equal([0, 1, 2], chain.Keys.Order());
                Assert.Same(chain[0], Ancestor(chain[1], "stage.step"));
                Assert.Same(chain[1], Ancestor(chain[2], "stage.step"));
            }
        }
    }
}
