using CsCheck;
using Strata.Models;
using Strata.Models.Config;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// <see cref="LlamaConfig.Parse"/> on random text and on mutated real configs. A config that parses must describe a
/// shape the engine can size: positive dimensions, heads that divide, and tensor shapes that do not overflow.
/// </summary>
public sealed class ConfigFuzzTests(ITestOutputHelper output)
{
    private const string Where = "model/config.json";

    [Fact]
    public void RandomTextParsesOrFailsTyped() =>
        Fuzz.Check(output, "config.json", Gen.String, Parse, Typed, cases: 400);

    [Fact]
    public void MutatedConfigsParseOrFailTyped()
    {
        string[] seeds = [Seeds.Read("config.json"), Seeds.Llama3Config];
        var gen = Gen.Int[0, seeds.Length - 1].Select(Gen.Int, (which, seed) => JsonMutator.MutateText(seeds[which], seed));
        Fuzz.Check(output, "config.json", gen, Parse, Typed, cases: 1000, print: Clip);
    }

    private static void Parse(string json)
    {
        var c = LlamaConfig.Parse(json, Where);
        if (c.HiddenSize <= 0 || c.NumHeads <= 0 || c.NumKvHeads <= 0 || c.HeadDim <= 0 || c.NumLayers <= 0 || c.VocabSize <= 0
            || c.IntermediateSize <= 0 || c.NumHeads % c.NumKvHeads != 0)
            throw new FuzzFailure($"accepted an unusable shape: {c}");
        foreach (var t in LlamaTensors.Expected(c).Take(20))
            if (t.Shape.Any(d => d <= 0)) throw new FuzzFailure($"accepted a config implying tensor {t.Name} [{string.Join(", ", t.Shape)}]");
    }

    private static readonly Func<Exception, string?> Typed = Fuzz.Only<ModelFormatException>(e =>
        e.File != Where ? $"the error names '{e.File}', not the file" : null);

    internal static string Clip(string s) => s.Length <= 3000 ? s : s[..3000] + $"... ({s.Length} chars)";
}
