using System.Text;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Fuzz.Tests;

/// <summary>Crashes the tokenizer fuzzing found, each kept as a plain case.</summary>
public sealed class TokenizerRegressionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private ModelFormatException Refused(string tokenizerJson, (string File, string Text)? side = null) =>
        Refused(Encoding.UTF8.GetBytes(tokenizerJson), side);

    private ModelFormatException Refused(byte[] tokenizerJson, (string File, string Text)? side = null)
    {
        File.WriteAllBytes(_dir.File("tokenizer.json"), tokenizerJson);
        if (side is { } s) File.WriteAllText(_dir.File(s.File), s.Text);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(_dir.Path));
        Assert.StartsWith(_dir.Path, e.File, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void LoneSurrogateInAVocabPieceIsAFormatError()
    {
        // Was InvalidOperationException ("incomplete UTF-16 JSON text") when the vocab was read.
        string json = TokenizerFuzzTests.ByteLevelTokenizer.Replace("\"ab\":2", "\"\\ud800\":2", StringComparison.Ordinal);
        Assert.Contains("not valid Unicode", Refused(json).Message);
    }

    [Fact]
    public void InvalidUtf8InAStringFieldIsAFormatErrorNamingIt()
    {
        // Was InvalidOperationException ("Cannot transcode invalid UTF-8") from the lazy string read.
        byte[] json = Encoding.UTF8.GetBytes(TokenizerFuzzTests.ByteLevelTokenizer.Replace("\"behavior\":\"Isolated\"", "\"behavior\":\"Isolated?\"", StringComparison.Ordinal));
        json[Array.IndexOf(json, (byte)'?')] = 0xC3;
        var e = Refused(json);
        Assert.Equal("pre_tokenizer.pretokenizers[0].behavior", e.Item);
    }

    [Fact]
    public void LoneSurrogateInASpecialTokenNameIsAFormatError()
    {
        var e = Refused(TokenizerFuzzTests.ByteLevelTokenizer, ("special_tokens_map.json", """{"bos_token": "\udc00"}"""));
        Assert.Equal("bos_token", e.Item);
        Assert.EndsWith("special_tokens_map.json", e.File, StringComparison.Ordinal);
    }

    [Fact]
    public void BosIdOutsideTheVocabularyIsRefused()
    {
        // Was accepted: config.json's bos_token_id -1 became the first id of every prompt.
        var e = Refused(TokenizerFuzzTests.ByteLevelTokenizer, ("config.json", """{"bos_token_id": -1}"""));
        Assert.Equal("bos_token_id", e.Item);
        Assert.EndsWith("config.json", e.File, StringComparison.Ordinal);
    }

    [Fact]
    public void StopIdOutsideTheVocabularyIsRefusedNamingItsFile()
    {
        var e = Refused(TokenizerFuzzTests.ByteLevelTokenizer, ("generation_config.json", """{"eos_token_id": [5, 4096]}"""));
        Assert.Equal("eos_token_id", e.Item);
        Assert.EndsWith("generation_config.json", e.File, StringComparison.Ordinal);
        Assert.Contains("4096", e.Message);
    }

    [Fact]
    public void InvalidUtf8WhereAnIdBelongsIsAFormatErrorNamingTheField()
    {
        // Was InvalidOperationException from GetRawText while the error message about the field was being written.
        File.WriteAllBytes(_dir.File("generation_config.json"), [.. "{\"eos_token_id\": \""u8, 0xFF, .. "\"}"u8]);
        var e = Refused(TokenizerFuzzTests.ByteLevelTokenizer);
        Assert.Equal("eos_token_id", e.Item);
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Fact]
    public void CatastrophicSplitPatternFailsTypedInsteadOfHanging()
    {
        // Was a hang: (a+)+$ backtracks 2^n times on "aaa...a!" and the regex had no time limit.
        string json = TokenizerFuzzTests.ByteLevelTokenizer.Replace(
            """\\p{L}+|\\s+|[^\\s\\p{L}]+""", "(a+)+$", StringComparison.Ordinal);
        Assert.Contains("(a+)+$", json, StringComparison.Ordinal);
        File.WriteAllText(_dir.File("tokenizer.json"), json);
        var tokenizer = TokenizerLoader.Load(_dir.Path);
        ModelFormatException? e = null;
        Fuzz.Once(() => e = Assert.Throws<ModelFormatException>(() => tokenizer.Encode(new string('a', 64) + "!")), Fuzz.Only<ModelFormatException>());
        Assert.NotNull(e);
        Assert.Equal("tokenizer.json", e.File); // a bare name: this error reaches clients
        Assert.Equal("pre_tokenizer.pretokenizers[0].pattern.Regex", e.Item);
        Assert.Contains("backtracks catastrophically", e.Message);
    }
}
