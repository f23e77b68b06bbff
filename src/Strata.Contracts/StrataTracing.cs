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

    /// <summary>
    /// Starts a span of Strata's source when it will be recorded: under a sampled parent, or as a root the sampler
    /// keeps. Under a parent that is not recorded (a request the sampler dropped) it starts nothing, so the steps
    /// of untraced requests allocate no spans of Strata's own; the parent's context still travels with the calls.
    /// </summary>
    public static Activity? StartSpan(string name, ActivityKind kind = ActivityKind.Internal) =>
        Activity.Current is { Recorded: false } ? null : Source.StartActivity(name, kind);

    /// <summary>
    /// Starts a span of Strata's source under the W3C trace context <paramref name="traceParent"/> (a step that
    /// travelled in a batch with others, under one call's context), only when that context was recorded; nothing for
    /// no context or one that does not parse.
    /// </summary>
    public static Activity? StartSpan(string name, string? traceParent)
    {
        if (traceParent is null || !ActivityContext.TryParse(traceParent, null, out var parent)
            || (parent.TraceFlags & ActivityTraceFlags.Recorded) == 0) return null;
        return Source.StartActivity(name, ActivityKind.Internal, parent);
    }

    /// <summary>Whether <paramref name="span"/> records tags (a sampled span): callers compute and set tags only then.</summary>
    public static bool Records([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] Activity? span) => span is { IsAllDataRequested: true };

    /// <summary>The sources a tracer provider listens to: Strata's and Orleans' application grain calls (the hop
    /// spans between the session and the stages).</summary>
    public static readonly string[] Sources = [SourceName, "Microsoft.Orleans.Application"];
}
