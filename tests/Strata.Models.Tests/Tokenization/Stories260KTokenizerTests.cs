using Microsoft.ML.Tokenizers;
using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Tokenization;

/// <summary>
/// The tokenizer.json path against the reference: Microsoft.ML.Tokenizers' LlamaTokenizer over the same model's
/// sentencepiece tokenizer.model (which agrees with run.c), on every case the model README calls out.
/// </summary>
public sealed class Stories260KTokenizerTests
{
    private static readonly string[] Cases =
    [
        "Once upon a time",
        "  two  spaces ",
        "ë",
        "é’“”—…",
        "a\nb",
        "tab\there",
        "0123456789",
        "Lily was 3 years old. She said: \"Hi!\"",
        " leading space",
        "trailing\n\n",
        "emoji 😀 and 中文",
        "The little dog's ball went \u201Cup\u201D\u2014very high\u2026",
    ];

    public static TheoryData<string> Texts => new(Cases);

    [Theory]
    [MemberData(nameof(Texts))]
    public void Encode_matches_sentencepiece_reference(string text)
    {
        string dir = TestModels.Stories260K();
        var reference = LlamaTokenizer.Create(File.OpenRead(Path.Combine(dir, "tokenizer.model")));
        var tokenizer = TokenizerLoader.Load(dir);

        Assert.Equal(reference.EncodeToIds(text).ToArray(), tokenizer.Encode(text));
        Assert.Equal(reference.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false).ToArray(),
            tokenizer.Encode(text, addBos: false));
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public void Decode_round_trips_and_streams(string text)
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);
        int[] ids = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(ids));
        var stream = tokenizer.CreateStreamingDecoder();
        string streamed = string.Concat(ids.Select(stream.Push)) + stream.Flush();
        Assert.Equal(text, streamed);
    }

    [Fact]
    public void Empty_prompt_is_bos_alone()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);

        Assert.Equal([1], tokenizer.Encode(""));
        Assert.Empty(tokenizer.Encode("", addBos: false));
        Assert.Equal("", tokenizer.Decode([1]));
    }

    [Fact]
    public void Readme_cases_have_the_documented_pieces()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);
        string[] Pieces(string text) => tokenizer.Encode(text, addBos: false).Select(tokenizer.TokenText).ToArray();

        Assert.Equal(["▁", "<0xC3>", "<0xAB>"], Pieces("ë"));
        Assert.Equal(13, tokenizer.Encode("a\nb")[2]); // <0x0A>
        Assert.Contains(12, tokenizer.Encode("tab\there")); // <0x09>
        Assert.Equal(["▁", "é", "’", "“", "”", "—", "…"], Pieces("é’“”—…"));
        Assert.All(Pieces("0123456789").Skip(1), p => Assert.Equal(1, p.Length));
        Assert.Equal("▁▁", string.Concat(Pieces("  two  spaces ").Take(2)));
    }

    [Fact]
    public void Specials_and_stop_ids()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);

        Assert.Equal(512, tokenizer.VocabSize);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal([2, 1], tokenizer.EosIds);
        Assert.Equal("<s>", tokenizer.TokenText(1));
        Assert.Equal("<0x0A>", tokenizer.TokenText(13));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.TokenText(512));
    }

    [Fact]
    public void Decode_strips_exactly_one_leading_space_and_skips_specials()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);
        int[] once = tokenizer.Encode("Once", addBos: false);
        int space = Enumerable.Range(0, tokenizer.VocabSize).Single(id => tokenizer.TokenText(id) == "▁");

        Assert.Equal("Once", tokenizer.Decode(once));
        Assert.Equal(" Once", tokenizer.Decode([space, .. once]));
        Assert.Equal("Once", tokenizer.Decode([1, .. once, 2]));
        Assert.Equal("Once Once", tokenizer.Decode([.. once, .. once]));
    }

    [Fact]
    public void Special_token_text_in_a_prompt_is_one_token_as_in_hugging_face()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);

        int[] ids = tokenizer.Encode("Hi</s>", addBos: false);
        Assert.Equal(2, ids[^1]);
        Assert.Equal(tokenizer.Encode("Hi", addBos: false), ids[..^1]);
    }

    [Fact]
    public void Tokenizer_model_alone_agrees_with_tokenizer_json()
    {
        string dir = TestModels.Stories260K();
        using var tmp = TestModels.NewTempDir();
        foreach (string name in new[] { "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "config.json", "generation_config.json" })
            File.Copy(Path.Combine(dir, name), Path.Combine(tmp.Path, name));
        var fromJson = TokenizerLoader.Load(dir);
        var fromModel = TokenizerLoader.Load(tmp.Path);

        Assert.Equal(fromJson.VocabSize, fromModel.VocabSize);
        Assert.Equal(fromJson.BosId, fromModel.BosId);
        Assert.Equal(fromJson.EosIds, fromModel.EosIds);
        for (int id = 0; id < fromJson.VocabSize; id++) Assert.Equal(fromJson.TokenText(id), fromModel.TokenText(id));
        foreach (string text in Cases.Append(""))
        {
            Assert.Equal(fromJson.Encode(text), fromModel.Encode(text));
            Assert.Equal(text, fromModel.Decode(fromModel.Encode(text)));
        }
    }

    [Fact]
    public void Long_prompt_encodes_quickly()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);
        string text = string.Concat(Enumerable.Repeat("Once upon a time, there was a little girl named Lily. ", 200));
        tokenizer.Encode(text); // warm-up (JIT)

        var watch = System.Diagnostics.Stopwatch.StartNew();
        int[] ids = tokenizer.Encode(text);
        watch.Stop();

        Assert.True(ids.Length > 2000, $"expected thousands of tokens, got {ids.Length}");
        Assert.True(watch.ElapsedMilliseconds < 1000, $"encoding {ids.Length} tokens took {watch.ElapsedMilliseconds} ms");
        Assert.Equal(text, tokenizer.Decode(ids));
    }
}
