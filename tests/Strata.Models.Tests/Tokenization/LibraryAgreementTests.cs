using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Tokenization;

/// <summary>
/// The byte-level path against Microsoft.ML.Tokenizers' BpeTokenizer (byte-level mode, GPT-2 split regex) on a
/// vocabulary large enough to exercise many merges: the synthetic vocabulary rewritten in GPT-2's byte alphabet.
/// </summary>
public sealed class LibraryAgreementTests
{
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    [Fact]
    public void Byte_level_encoding_agrees_with_BpeTokenizer()
    {
        var synthetic = SyntheticTokenizer.BuildVocabulary(5000);
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 256; b++) vocab[ByteLevelAlphabet.Map((byte)b).ToString()] = b;
        var merges = new List<string>();
        foreach (var (left, right) in synthetic.Merges)
        {
            string l = left.Replace('▁', 'Ġ'), r = right.Replace('▁', 'Ġ');
            vocab.TryAdd(l + r, vocab.Count);
            merges.Add($"{l} {r}");
        }
        using var tmp = TestModels.NewTempDir();
        tmp.Write("tokenizer.json", new JsonObject
        {
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = new JsonObject(vocab.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)m).ToArray()),
            },
        }.ToJsonString());
        var ours = TokenizerLoader.Load(tmp.Path);
        var reference = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(new Regex(Gpt2Pattern), null),
        });
        Assert.Equal([vocab["Ġthe"], vocab["Ġlittle"]], ours.Encode(" the little")); // merges are exercised
        var random = new Random(99);
        string[] words = ["the", "little", "girl", "Once", "upon", "zqx", "abc", "don't", "42", "3.14", "\n", "  ", "é", "😀", "中文"];

        for (int i = 0; i < 300; i++)
        {
            string text = i % 2 == 0
                ? string.Join(random.Next(3) == 0 ? "  " : " ", Enumerable.Range(0, random.Next(1, 12)).Select(_ => words[random.Next(words.Length)]))
                : RandomText.Make(random, 30);
            Assert.Equal(reference.EncodeToIds(text).ToArray(), ours.Encode(text));
            Assert.Equal(text, ours.Decode(ours.Encode(text)));
        }
    }
}
