using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Tokenization;

/// <summary>Bad or unsupported tokenizer files fail with a ModelFormatException naming the file and field.</summary>
public sealed class MalformedTokenizerTests
{
    private const string SentencePieceParts = """
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}]},
        "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]}
        """;

    private static ModelFormatException LoadFails(string file, string content)
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", """{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "Fuse"}}""");
        tmp.Write(file, content);
        return Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(tmp.Path));
    }

    [Fact]
    public void Invalid_json_names_the_file()
    {
        var ex = LoadFails("tokenizer.json", "{\"model\": {");

        Assert.EndsWith("tokenizer.json", ex.File);
        Assert.Contains("tokenizer.json: invalid JSON", ex.Message);
    }

    [Theory]
    [InlineData("Unigram")]
    [InlineData("WordPiece")]
    [InlineData("WordLevel")]
    public void Unsupported_model_type_names_the_field(string type)
    {
        var ex = LoadFails("tokenizer.json", "{\"model\": {\"type\": \"" + type + "\", \"vocab\": {\"a\": 0}}}");

        Assert.Equal("model.type", ex.Item);
        Assert.Contains($"tokenizer.json: model.type: '{type}' is not supported", ex.Message);
    }

    [Fact]
    public void Missing_vocab_names_the_field()
    {
        var ex = LoadFails("tokenizer.json", """{"model": {"type": "BPE", "merges": []}}""");

        Assert.Contains("tokenizer.json: model.vocab: required field is missing", ex.Message);
    }

    [Theory]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}, "decoder": {"type": "Fuse"}}""", "model.merges[0]")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}, "decoder": {"type": "Fuse"}}""", "model.merges[0]")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}}""", "model.vocab[\"a\"]")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}""", "model.unk_token")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "decoder")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "decoder": {"type": "WordPiece"}}""", "decoder.type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}, "decoder": {"type": "Fuse"}}""", "model.dropout")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "continuing_subword_prefix": "##"}}""", "model.continuing_subword_prefix")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "BertNormalizer"}]}, "decoder": {"type": "Fuse"}}""", "normalizer.normalizers[0].type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}, "decoder": {"type": "Fuse"}}""", "pre_tokenizer.type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}, "decoder": {"type": "Fuse"}}""", "pre_tokenizer.pattern.Regex")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "post_processor": {"type": "RobertaProcessing"}, "decoder": {"type": "Fuse"}}""", "post_processor.type")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "Fuse"}}""", "decoder")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "added_tokens": [{"content": "<s>"}], "decoder": {"type": "Fuse"}}""", "added_tokens[0].id")]
    public void Bad_or_unsupported_fields_are_named(string json, string field)
    {
        var ex = LoadFails("tokenizer.json", json);

        Assert.Equal(field, ex.Item);
        Assert.StartsWith(Path.Combine(Path.GetDirectoryName(ex.File)!, "tokenizer.json") + ": " + field + ": ", ex.Message);
    }

    [Fact]
    public void Model_that_is_not_an_object_is_named()
    {
        var ex = LoadFails("tokenizer.json", """{"model": [1, 2]}""");

        Assert.Equal("model", ex.Item);
    }

    [Theory]
    [InlineData("generation_config.json", "{nope", null)]
    [InlineData("generation_config.json", """{"eos_token_id": ["x"]}""", "eos_token_id[0]")]
    [InlineData("config.json", """{"eos_token_id": "2"}""", "eos_token_id")]
    [InlineData("tokenizer_config.json", """{"add_bos_token": "yes"}""", "add_bos_token")]
    [InlineData("special_tokens_map.json", "[", null)]
    public void Bad_side_files_are_named(string file, string content, string? field)
    {
        var ex = LoadFails(file, content);

        Assert.EndsWith(file, ex.File);
        Assert.Equal(field, ex.Item);
    }

    [Fact]
    public void Missing_tokenizer_names_the_file()
    {
        using var tmp = TestModels.NewTempDir();

        var ex = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(tmp.Path));
        Assert.EndsWith("tokenizer.json", ex.File);
    }

    [Fact]
    public void Garbage_tokenizer_model_names_the_file()
    {
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.model", "this is not a protobuf");

        var ex = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(tmp.Path));
        Assert.EndsWith("tokenizer.model", ex.File);
    }

    [Fact]
    public void Minimal_sentencepiece_file_loads()
    {
        // The fixture above is valid apart from the field each test breaks.
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", $$"""{"model": {"type": "BPE", "vocab": {"a": 0, "▁": 1}, "merges": []}, {{SentencePieceParts}}}""");

        Assert.Equal([1, 0], TokenizerLoader.Load(tmp.Path).Encode("a"));
    }
}
