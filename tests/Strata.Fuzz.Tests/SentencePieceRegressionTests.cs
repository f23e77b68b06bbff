using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Fuzz.Tests;

/// <summary>What the tokenizer.model fuzzing found, each kept as a plain case: models that loaded and then encoded
/// prompts to ids outside their vocabulary.</summary>
public sealed class SentencePieceRegressionTests : IDisposable
{
    private static readonly byte[] Seed = File.ReadAllBytes(Path.Combine(Seeds.ModelDir, "tokenizer.model"));

    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ModelFormatException Refused(byte[] model)
    {
        File.WriteAllBytes(_dir.File("tokenizer.model"), model);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(_dir.Path));
        Assert.Equal(_dir.File("tokenizer.model"), e.File);
        return e;
    }

    [Fact]
    public void BosIdOutsideTheVocabularyIsRefused()
    {
        // Was accepted: Microsoft.ML.Tokenizers takes trainer_spec.bos_id as it is, so every prompt began with id 512
        // of a 512-piece vocabulary.
        var e = Refused(ProtoMutator.WithTrainerValue(Seed, 41, 512));
        Assert.Equal("trainer_spec.bos_id", e.Item);
        Assert.Contains("512 is not the id of a piece", e.Problem);
    }

    [Fact]
    public void BytePiecesThatAreNotConsecutiveAreRefused()
    {
        // Was accepted: with byte fallback the library encodes byte b as id("<0x00>") + b, so once "<0x00>" was not
        // right before "<0x01>" an emoji became ids of other pieces and past the end of the vocabulary (604 of 512).
        var e = Refused(ProtoMutator.WithPieceMovedLast(Seed, 3)); // "<0x00>" is piece 3
        Assert.Equal("pieces", e.Item);
        Assert.Contains("256 consecutive ids from 511", e.Problem);
    }

    [Fact]
    public void TheSeedStillEncodesBytesThroughTheFallback()
    {
        File.WriteAllBytes(_dir.File("tokenizer.model"), Seed);
        var tokenizer = TokenizerLoader.Load(_dir.Path);
        int[] ids = tokenizer.Encode("\ud83d\ude00");
        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabSize - 1));
        Assert.Equal("\ud83d\ude00", tokenizer.Decode(ids));
    }
}
