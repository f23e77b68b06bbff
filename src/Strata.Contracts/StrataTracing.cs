using System.Diagnostics;

namespace Strata.Contracts;

/// <summary>
/// Traces across hops. One request is one trace: the client's <c>strata.generate</c> span, the session's turn and
/// each of its steps, and at every stage a <c>stage.step</c> span with its queue wait, compute and the hop to the
/// next stage; Orleans carries the context through grain calls (activity propagation on silos and clients). Spans
/// exist only while something listens (an OpenTelemetry tracer provider with <see cref="Sources"/>), and are
/// recorded only for sampled traces, so tracing off costs nothing on the step path.
/// </summary>
public static class StrataTracing
{
    /// <summary>The activity source of Strata's own spans.</summary>
    public const string SourceName = "Strata";

    /// <summary>Strata's activity source.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The sources a tracer provider listens to: Strata's and Orleans' application grain calls (the hop
    /// spans between the session and the stages).</summary>
    public static readonly string[] Sources = [SourceName, "Microsoft.Orleans.Application"];
}
