using CsCheck;
using Strata.Models;
using Strata.Models.Tokenization;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// <see cref="TokenizerLoader.Load"/> on model folders that have sentencepiece's <c>tokenizer.model</c> (a protobuf
/// <c>ModelProto</c>, read by Microsoft.ML.Tokenizers) and no tokenizer.json: random bytes, and mutations of the
/// stories260K model's file (<see cref="ProtoMutator"/>), a quarter of them with mutated side files. What loads must
/// pass <see cref="TokenizerFuzzTests.Exercise"/>.
/// </summary>
public sealed class SentencePieceFuzzTests(ITestOutputHelper output) : IDisposable
{
    private static readonly byte[] Seed = File.ReadAllBytes(Path.Combine(Seeds.ModelDir, "tokenizer.model"));

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void TheSeedLoads()
    {
        var tokenizer = Load(Seed, sideSeed: null);
        Assert.Equal(512, tokenizer.VocabSize);
    }

    [Fact]
    public void RandomTokenizerModelLoadsOrFailsTyped() =>
        Fuzz.Check(output, "tokenizer.model", Gen.Byte.Array[0, 200], bytes => Load(bytes, sideSeed: null), Typed, cases: 300,
            print: Convert.ToHexString);

    [Fact]
    public void MutatedTokenizerModelLoadsOrFailsTyped()
    {
        var gen = Gen.Int.Select(Gen.Int[0, 3], (seed, side) => (Seed: seed, Side: side == 0 ? seed : (int?)null));
        Fuzz.Check(output, "tokenizer.model", gen, c => Load(ProtoMutator.Mutate(Seed, c.Seed), c.Side), Typed, cases: 700,
            print: c => $"ProtoMutator.Mutate(stories260K tokenizer.model, {c.Seed})" + (c.Side is int s ? $" (side files mutated, seed {s})" : ""));
    }

    private ITokenizer Load(byte[] model, int? sideSeed)
    {
        var tokenizer = TokenizerLoader.Load(TokenizerFuzzTests.ModelFolder(_dir, "tokenizer.model", model, sideSeed));
        TokenizerFuzzTests.Exercise(tokenizer);
        return tokenizer;
    }

    private string? Typed(Exception e) => Fuzz.Only<ModelFormatException>(m =>
        !m.File.StartsWith(_dir.Path, StringComparison.Ordinal) ? $"the error names '{m.File}', not a file of the model" : null)(e);
}
