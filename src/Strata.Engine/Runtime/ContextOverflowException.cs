namespace Strata.Engine.Runtime;

/// <summary>A sequence would grow past the KV capacity (the max-context setting).</summary>
public sealed class ContextOverflowException(int needed, int capacity)
    : Exception($"the sequence needs {needed} positions but the KV cache holds {capacity} (the max-context setting); " +
                "shorten the prompt, lower max new tokens, or raise --max-context")
{
    /// <summary>Positions the request needs.</summary>
    public int Needed { get; } = needed;

    /// <summary>Positions the cache holds.</summary>
    public int Capacity { get; } = capacity;
}
