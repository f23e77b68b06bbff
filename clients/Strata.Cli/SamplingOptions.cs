using System.CommandLine;
using Strata.Contracts;
using Strata.Engine.Sampling;
using Strata.Models.Tokenization;

namespace Strata.Cli;

/// <summary>The sampling flags shared by every generating command.</summary>
internal sealed class SamplingOptions
{
    private readonly Option<int> _maxNewTokens = new("--max-new-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 64 };
    private readonly Option<double> _temperature = new("--temperature") { Description = "0 = greedy (the default); higher = more random", DefaultValueFactory = _ => 0.0 };
    private readonly Option<int> _topK = new("--top-k") { Description = "Sample among the K most likely tokens (0 = off)", DefaultValueFactory = _ => 0 };
    private readonly Option<double> _topP = new("--top-p") { Description = "Nucleus sampling mass (1 = off)", DefaultValueFactory = _ => 1.0 };
    private readonly Option<ulong?> _seed = new("--seed") { Description = "Random seed: same seed, same tokens (default: a random seed, reported)" };
    private readonly Option<string[]> _stop = new("--stop") { Description = "Stop when this text appears (repeatable; not included in the output)", AllowMultipleArgumentsPerToken = false };
    private readonly Option<int[]> _stopIds = new("--stop-id") { Description = "Extra stop token ids (repeatable; the model's EOS ids always stop)" };

    public void AddTo(Command cmd)
    {
        foreach (var option in new Option[] { _maxNewTokens, _temperature, _topK, _topP, _seed, _stop, _stopIds })
            cmd.Options.Add(option);
    }

    /// <summary>The sampling parameters; stop ids are the tokenizer's EOS ids plus any given.</summary>
    public SamplingParams Build(ParseResult parse, ITokenizer tokenizer)
    {
        var p = new SamplingParams
        {
            MaxNewTokens = parse.GetValue(_maxNewTokens),
            Temperature = parse.GetValue(_temperature),
            TopK = parse.GetValue(_topK),
            TopP = parse.GetValue(_topP),
            Seed = parse.GetValue(_seed) ?? (ulong)Random.Shared.NextInt64(long.MaxValue), // chosen here so it can be reported
            StopIds = tokenizer.EosIds.Concat(parse.GetValue(_stopIds) ?? []).Distinct().ToArray(),
            StopStrings = parse.GetValue(_stop) ?? [],
        };
        p.Validate();
        return p;
    }

    /// <summary>A cluster request with the same flags, checked here as locally; the session adds the model's EOS ids.
    /// The seed is chosen here when none is given, so it can be reported.</summary>
    public GenerateRequest BuildRequest(ParseResult parse, string model, string prompt)
    {
        var p = new SamplingParams
        {
            MaxNewTokens = parse.GetValue(_maxNewTokens),
            Temperature = parse.GetValue(_temperature),
            TopK = parse.GetValue(_topK),
            TopP = parse.GetValue(_topP),
            Seed = parse.GetValue(_seed) ?? (ulong)Random.Shared.NextInt64(long.MaxValue),
            StopIds = parse.GetValue(_stopIds) ?? [],
            StopStrings = parse.GetValue(_stop) ?? [],
        };
        p.Validate();
        return new GenerateRequest
        {
            Model = model,
            Prompt = prompt,
            MaxNewTokens = p.MaxNewTokens,
            Sampling = new SamplingSpec(p.Temperature, p.TopK, p.TopP),
            Seed = p.Seed,
            StopStrings = [.. p.StopStrings],
            StopIds = [.. p.StopIds],
        };
    }
}
