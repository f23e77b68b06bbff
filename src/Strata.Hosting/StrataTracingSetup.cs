using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Strata.Contracts;

namespace Strata.Hosting;

/// <summary>How a Strata process traces: Strata's and Orleans' grain-call sources, parent-based sampling with a
/// ratio for traces that start here.</summary>
public static class StrataTracingSetup
{
    /// <summary>Adds the sources and the sampler to <paramref name="tracing"/>; the caller adds an exporter.</summary>
    public static TracerProviderBuilder Configure(TracerProviderBuilder tracing, double sampleRatio) =>
        tracing.AddSource(StrataTracing.Sources).SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(sampleRatio)));

    /// <summary>
    /// Traces a client process (the load generator, a tool): its <c>strata.generate</c> spans become the roots of the
    /// requests' traces, which the silos continue through every grain call, exported over OTLP to
    /// <paramref name="endpoint"/> (gRPC, or HTTP/protobuf with <paramref name="protocol"/> "http"), a fraction
    /// <paramref name="sampleRatio"/> of the requests. Dispose to flush and stop.
    /// </summary>
    /// <param name="serviceName">The process's service name in the traces.</param>
    /// <param name="endpoint">The OTLP endpoint URL.</param>
    /// <param name="sampleRatio">Fraction of traces that start here to record.</param>
    /// <param name="protocol">grpc or http (HTTP/protobuf).</param>
    /// <param name="extraSources">Further activity sources to record (the gateway's ASP.NET Core requests).</param>
    /// <exception cref="ArgumentException">The endpoint is not an http(s) URL, the ratio not in [0, 1] or the
    /// protocol unknown; the message names the setting.</exception>
    public static TracerProvider StartClient(string serviceName, string endpoint, double sampleRatio, string protocol = "grpc", params string[] extraSources)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"--otlp-endpoint needs an http(s) URL such as http://localhost:4317, got '{endpoint}'");
        if (sampleRatio is < 0 or > 1 || double.IsNaN(sampleRatio))
            throw new ArgumentException($"--trace-sample needs a fraction from 0 to 1, got {sampleRatio}");
        var otlp = protocol.ToLowerInvariant() switch
        {
            "grpc" => OpenTelemetry.Exporter.OtlpExportProtocol.Grpc,
            "http" or "http/protobuf" => OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf,
            _ => throw new ArgumentException($"--otlp-protocol must be grpc or http, got '{protocol}'"),
        };
        var builder = OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(r => r.AddService(serviceName))
            .AddSource(extraSources);
        return Configure(builder, sampleRatio).AddOtlpExporter(o =>
        {
            o.Protocol = otlp;
            o.Endpoint = otlp == OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf && uri.AbsolutePath is "" or "/" ? new Uri(uri, "/v1/traces") : uri;
        }).Build();
    }
}
