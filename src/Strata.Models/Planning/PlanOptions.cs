namespace Strata.Models.Planning;

/// <summary>How to cut a model into stages.</summary>
public sealed record PlanOptions
{
    /// <summary>Default <see cref="KvTokens"/>.</summary>
    public const int DefaultKvTokens = 2048;

    /// <summary>Exact number of stages, or null (the default) for the fewest stages that fit.</summary>
    public int? Stages { get; init; }

    /// <summary>KV cache positions every stage reserves for its layers: the longest context times the sessions the
    /// operator wants served at once. Default 2048.</summary>
    public int KvTokens { get; init; } = DefaultKvTokens;

    /// <summary>Fraction of each silo's memory kept free (runtime workspace, activations, fragmentation),
    /// in [0, 1). Default 0.10.</summary>
    public double Headroom { get; init; } = 0.10;

    /// <summary>Whether one silo may hold several stages, used when <see cref="Stages"/> exceeds the number of silos.
    /// Default true.</summary>
    public bool AllowSeveralStagesPerSilo { get; init; } = true;

    /// <summary>Default <see cref="HopSeconds"/>: 1 ms, a grain call between two silos on one network.</summary>
    public const double DefaultHopSeconds = 0.001;

    /// <summary>Rows per decode step the measured planner predicts step times for (the sessions a stage batches).
    /// Default 1.</summary>
    public int Batch { get; init; } = 1;

    /// <summary>What each hop between stages adds to a step, seconds: the measured planner adds one more stage only
    /// when it saves more than this. Default 0.001.</summary>
    public double HopSeconds { get; init; } = DefaultHopSeconds;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Stages is < 1)
            throw new ArgumentException($"PlanOptions.Stages is {Stages}; ask for at least 1 stage, or null for auto.", nameof(Stages));
        if (KvTokens < 0)
            throw new ArgumentException($"PlanOptions.KvTokens is {KvTokens}; it must be 0 or more.", nameof(KvTokens));
        if (!(Headroom >= 0 && Headroom < 1))
            throw new ArgumentException($"PlanOptions.Headroom is {Headroom}; it must be a fraction in [0, 1).", nameof(Headroom));
        if (Batch is < 1 or > 1 << 16)
            throw new ArgumentException($"PlanOptions.Batch is {Batch}; it must be between 1 and {1 << 16}.", nameof(Batch));
        if (!(HopSeconds >= 0 && double.IsFinite(HopSeconds)))
            throw new ArgumentException($"PlanOptions.HopSeconds is {HopSeconds}; it must be 0 or more seconds.", nameof(HopSeconds));
    }

    /// <summary>The memory a stage may use on a silo of <paramref name="memoryBytes"/>: what headroom leaves.</summary>
    public long Usable(long memoryBytes) => (long)Math.Floor(memoryBytes * (1 - Headroom));
}
