using System.Text.Json.Nodes;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Synthetic;
using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>A byte-level BPE tokenizer (<c>tokenizer.ggml.model = gpt2</c>) through GGUF and back.</summary>
public sealed class GgufByteLevelTokenizerTests
{
    private const string Qwen2Split =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Llama3Split =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private static readonly string[][] Merges =
    [
        ["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "n"], ["Ġ", "a"], ["o", "n"], ["Ġ", "w"], ["a", "s"], ["e", "r"],
        ["Ġw", "as"], ["Ġ", "s"], ["Ġs", "he"], ["in", "g"], ["1", "2"], ["12", "3"], ["Ġ", "Ġ"],
    ];

    /// <summary>A Hugging Face byte-level tokenizer.json: the 256 byte characters, the merges, two special tokens.</summary>
    private static (JsonObject Json, int Count) Tokenizer(string split, bool llama3)
    {
        var vocab = new JsonObject();
        int id = 0;
        for (int b = 0; b < 256; b++) vocab[ByteLevelAlphabet.Map((byte)b).ToString()] = id++;
        foreach (var m in Merges) vocab[m[0] + m[1]] = id++;
        var added = new JsonArray();
        foreach (string special in new[] { "<|endoftext|>", "<|im_start|>" })
        {
            added.Add(new JsonObject { ["id"] = id, ["content"] = special, ["special"] = true });
            vocab[special] = id++;
        }
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = split }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["ignore_merges"] = llama3,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(Merges.Select(m => (JsonNode)new JsonArray(m[0], m[1])).ToArray()),
            },
        };
        return (json, id);
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    public void Byte_level_tokenizers_survive_the_round_trip(string pre)
    {
        using var dir = new ScratchDir();
        var (json, count) = Tokenizer(pre == "qwen2" ? Qwen2Split : Llama3Split, pre == "llama-bpe");
        string src = dir.Sub("src");
        SyntheticCheckpoint.Write(new SyntheticOptions { Architecture = "Qwen2ForCausalLM", Vocab = count, Tied = true }, src);
        File.WriteAllText(Path.Combine(src, "tokenizer.json"), json.ToJsonString());
        File.WriteAllText(Path.Combine(src, "tokenizer_config.json"), new JsonObject
        {
            ["add_bos_token"] = false,
            ["eos_token"] = "<|endoftext|>",
            ["chat_template"] = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}",
        }.ToJsonString());
        string file = dir.Sub("m.gguf");
        GgufExporter.Export(src, file, GgmlType.F16);

        using (var gguf = GgufCheckpoint.Open(file))
        {
            Assert.Equal("gpt2", gguf.Metadata.String("tokenizer.ggml.model"));
            Assert.Equal(pre, gguf.Metadata.String("tokenizer.ggml.pre"));
            Assert.Equal("qwen2", gguf.Architecture);
        }
        var package = Strata.Models.Packaging.ModelImporter.Import(file, dir.Sub("pkg"));
        var original = TokenizerLoader.Load(src);
        var imported = TokenizerLoader.Load(package.Directory);
        Assert.Equal(count - 2, imported.EosIds.Single());
        foreach (string text in GgufReaderTests.TokenizerSamples.Append("she was the one 12345 <|im_start|>hi"))
        {
            Assert.Equal(original.Encode(text, addBos: false), imported.Encode(text, addBos: false));
            Assert.Equal(original.Encode(text), imported.Encode(text));
            Assert.Equal(original.Decode(original.Encode(text)), imported.Decode(imported.Encode(text))); // special tokens are skipped
        }
        Assert.Equal(Strata.Models.Chat.ChatTemplate.FromTokenizerConfig(src).Source, Strata.Models.Chat.ChatTemplate.FromTokenizerConfig(package.Directory).Source);
    }
}
