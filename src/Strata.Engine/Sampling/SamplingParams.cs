namespace Strata.Engine.Sampling;

/// <summary>
/// How to pick the next token and when to stop, as a request states it. Defaults follow the
/// OpenAI and Hugging Face conventions: plain sampling at temperature 1 with no top-k or top-p cut.
/// Field names in error messages are the request's JSON names (temperature, top_p, ...).
/// </summary>
public sealed record SamplingParams
{
    /// <summary>Softmax temperature, &gt;= 0. Zero means greedy decoding (argmax, lowest id on ties). Default 1.0.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep only the k most probable tokens before top-p; 0 turns the cut off. Default 0.</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: keep the smallest set of most probable tokens whose probability sums to
    /// at least this, in (0, 1]; 1 turns the cut off. Default 1.0.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>Seed of the sampler's generator; null picks a random seed once, which <see cref="Sampler.Seed"/> reports.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Most tokens to generate, &gt;= 1. Default 128.</summary>
    public int MaxNewTokens { get; init; } = 128;

    /// <summary>Token ids that end generation; the stop token's text is not emitted. Default none.</summary>
    public IReadOnlyList<int> StopIds { get; init; } = [];

    /// <summary>Strings that end generation; the text from the stop string on is not emitted. Default none.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Greedy decoding (temperature 0) with the other defaults.</summary>
    public static SamplingParams Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Whether the sampler takes the argmax instead of drawing.</summary>
    public bool IsGreedy => Temperature == 0;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field that is out of range.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Temperature) || Temperature < 0)
            throw new ArgumentException($"temperature must be >= 0 and finite (got {Temperature})", "temperature");
        if (TopK < 0)
            throw new ArgumentException($"top_k must be >= 0, 0 meaning off (got {TopK})", "top_k");
        if (!(TopP > 0 && TopP <= 1))
            throw new ArgumentException($"top_p must be in (0, 1] (got {TopP})", "top_p");
        if (MaxNewTokens < 1)
            throw new ArgumentException($"max_new_tokens must be >= 1 (got {MaxNewTokens})", "max_new_tokens");
        if (StopIds is null || StopIds.Any(id => id < 0))
            throw new ArgumentException("stop_token_ids must be a list of ids >= 0", "stop_token_ids");
        if (StopStrings is null || StopStrings.Any(string.IsNullOrEmpty))
            throw new ArgumentException("stop strings must be non-empty", "stop");
    }
}
