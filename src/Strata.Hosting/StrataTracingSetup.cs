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
}
