using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Tokenization;

/// <summary>
/// Byte-level BPE (GPT-2 / Llama 3 / Qwen2 kind) on a hand-made vocabulary whose ids were worked out by hand.
/// Space is 'Ġ' and 'é' (C3 A9) is "Ã©" in GPT-2's byte alphabet.
/// </summary>
public sealed class ByteLevelBpeTests
{
    private const string Vocab = """
        {"h": 0, "e": 1, "l": 2, "o": 3, "Ġ": 4, "w": 5, "r": 6, "d": 7, "Ã": 8, "©": 9,
         "he": 10, "ll": 11, "hell": 12, "hello": 13, "Ġw": 14, "or": 15, "Ġwor": 16, "ld": 17, "Ã©": 18, "!": 19}
        """;

    private const string Merges = """["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ã ©"]""";

    private static string Gpt2Json(string vocab = Vocab, string merges = Merges) => $$"""
        {
          "version": "1.0",
          "added_tokens": [
            {"id": 20, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true, "special": true}
          ],
          "normalizer": null,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
          "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
          "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                    "fuse_unk": false, "byte_fallback": false, "vocab": {{vocab}}, "merges": {{merges}}}
        }
        """;

    // Llama 3's layout: its split regex, ByteLevel without regex, BOS from a template, merges in the array form.
    private static readonly string Llama3Json = """
        {
          "version": "1.0",
          "added_tokens": [
            {"id": 20, "content": "<|end_of_text|>", "special": true},
            {"id": 21, "content": "<|begin_of_text|>", "special": true},
            {"id": 22, "content": "<|eot_id|>", "special": true}
          ],
          "normalizer": null,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
          "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [],
             "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [21], "tokens": ["<|begin_of_text|>"]}}}]},
          "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
          "model": {"type": "BPE", "ignore_merges": true, "vocab": VOCAB,
                    "merges": [["h", "e"], ["l", "l"], ["he", "ll"], ["hell", "o"], ["Ġ", "w"], ["o", "r"], ["Ġw", "or"], ["l", "d"], ["Ã", "©"]]}
        }
        """.Replace("VOCAB", Vocab, StringComparison.Ordinal);

    [Fact]
    public void Gpt2_style_exact_ids_and_round_trip()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Gpt2Json());
        var tokenizer = TokenizerLoader.Load(tmp.Path);

        // "hello" | " world" -> Ġwor ld | " é" -> Ġ Ã© | special token whole.
        int[] ids = tokenizer.Encode("hello world é<|endoftext|>");

        Assert.Equal([13, 16, 17, 4, 18, 20], ids);
        Assert.Equal("hello world é", tokenizer.Decode(ids));
        Assert.Equal("hello world é", tokenizer.Decode(tokenizer.Encode("hello world é")));
        Assert.Equal(21, tokenizer.VocabSize);
        Assert.Null(tokenizer.BosId); // no tokenizer_config.json, no config.json
        Assert.Equal("Ġwor", tokenizer.TokenText(16));
    }

    [Fact]
    public void Equal_ranks_merge_leftmost_first()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Gpt2Json());
        var tokenizer = TokenizerLoader.Load(tmp.Path);

        Assert.Equal([11, 2], tokenizer.Encode("lll"));
        Assert.Equal([11, 11], tokenizer.Encode("llll"));
    }

    [Theory]
    [InlineData("""["b c", "a b"]""", new[] { 0, 4 })]
    [InlineData("""["a b", "b c"]""", new[] { 3, 2 })]
    public void Lowest_rank_wins_over_position(string merges, int[] expected)
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Gpt2Json("""{"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4}""", merges));
        var tokenizer = TokenizerLoader.Load(tmp.Path);

        Assert.Equal(expected, tokenizer.Encode("abc"));
    }

    [Fact]
    public void Llama3_style_split_regex_template_bos_and_stop_ids()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Llama3Json);
        tmp.Write("tokenizer_config.json", """{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}""");
        tmp.Write("config.json", """{"bos_token_id": 21, "eos_token_id": 20}""");
        tmp.Write("generation_config.json", """{"bos_token_id": 21, "eos_token_id": [20, 22]}""");
        var tokenizer = TokenizerLoader.Load(tmp.Path);

        Assert.Equal([21, 13, 16, 17, 4, 18], tokenizer.Encode("hello world é"));
        Assert.Equal([13, 16, 17, 4, 18, 22], tokenizer.Encode("hello world é<|eot_id|>", addBos: false));
        Assert.Equal(21, tokenizer.BosId);
        Assert.Equal([20, 22], tokenizer.EosIds);
        Assert.Equal("hello world é", tokenizer.Decode(tokenizer.Encode("hello world é")));
        Assert.Equal([21], tokenizer.Encode(""));
    }

    [Fact]
    public void Stop_ids_fall_back_to_config_json()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Llama3Json);
        tmp.Write("config.json", """{"eos_token_id": 22}""");
        var tokenizer = TokenizerLoader.Load(tmp.Path);

        Assert.Equal([22], tokenizer.EosIds);
    }

    [Fact]
    public void Streaming_holds_a_character_split_over_byte_pieces()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", Gpt2Json());
        var stream = TokenizerLoader.Load(tmp.Path).CreateStreamingDecoder();

        Assert.Equal("hello", stream.Push(13));
        Assert.Equal(" ", stream.Push(4));
        Assert.Equal("", stream.Push(8)); // Ã = byte C3, the first half of é
        Assert.Equal("", stream.Push(20)); // special: nothing, and the pending byte stays pending
        Assert.Equal("é", stream.Push(9)); // © = byte A9
        Assert.Equal("", stream.Flush());
    }
}
