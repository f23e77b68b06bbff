using System.Diagnostics;
using System.Text.Json;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Strata.Hosting;

namespace Strata.Gateway.Tests;

/// <summary>
/// A traced request through the gateway is one trace: the HTTP request's span (ASP.NET Core's source, as
/// <c>strata gateway --otlp-endpoint</c> records it) continues the caller's traceparent and is the parent of the client
/// library's <c>strata.generate</c>, which the session's turn continues. The cluster runs in this process, so one
/// in-memory exporter sees every span; the request is found by the trace id it was sent with.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class GatewayTracingTests(GatewayFixture fx)
{
    [Fact]
    public async Task A_traced_request_is_one_trace_from_the_http_request_to_the_session()
    {
        var spans = new List<Activity>();
        var traceId = ActivityTraceId.CreateRandom();
        var callerSpan = ActivitySpanId.CreateRandom();
        using (var tracer = StrataTracingSetup.Configure(Sdk.CreateTracerProviderBuilder().AddSource("Microsoft.AspNetCore"), sampleRatio: 0)
                   .AddInMemoryExporter(spans).Build())
        {
            var request = fx.Request(HttpMethod.Post, "/v1/completions", "alice",
                JsonSerializer.Serialize(new { model = GatewayFixture.Model, prompt = "Once upon a time", max_tokens = 4, temperature = 0 }));
            request.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");
            var reply = await fx.Send(request);
            Assert.Equal(200, reply.Status);
            tracer.ForceFlush();
        }
        List<Activity> ours;
        lock (spans) ours = spans.Where(s => s.TraceId == traceId).ToList();
        var http = Assert.Single(ours, s => s.Source.Name == "Microsoft.AspNetCore");
        Assert.Equal(callerSpan, http.ParentSpanId);
        var generate = Assert.Single(ours, s => s.OperationName == "strata.generate");
        Assert.Equal(http.SpanId, generate.ParentSpanId);
        Assert.Contains(ours, s => s.OperationName == "session.turn");
        Assert.All(ours.Where(s => s != http), s => Assert.Contains(ours, p => p.SpanId == s.ParentSpanId));
    }
}
