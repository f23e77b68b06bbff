using System.Diagnostics;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Strata.Models.Tokenization;

/// <summary>
/// Writes a tokenizer for synthetic (random-weight) checkpoints: sentencepiece-style BPE with byte fallback, laid out
/// like Llama 2's. Ids 0..2 are <c>&lt;unk&gt;</c>, <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>; 3..258 are <c>&lt;0x00&gt;</c>..<c>&lt;0xFF&gt;</c>;
/// then '▁' and the printable ASCII characters (most frequent English letters first); then merged pieces: common
/// English words, common fragments, then lowercase strings by length, until exactly the requested size. Byte fallback makes any
/// text round-trip. The output is deterministic and loads with <see cref="TokenizerLoader.Load"/>.
/// </summary>
public static class SyntheticTokenizer
{
    /// <summary>
    /// The smallest vocabulary supported: 3 special tokens, 256 bytes and '▁'. Without '▁' a space would fall back to
    /// the bytes of '▁' and decode as '▁', not as a space.
    /// </summary>
    public const int MinVocabSize = 260;

    // Letters by English frequency, then the rest of printable ASCII; ids follow this order.
    private const string BaseCharacters = "▁etaoinshrdlcumwfgypbvkjxqzTAISHWOBMCDFLNPRGEYJKUVQXZ.,'\"!?-:;0123456789";

    private static readonly string[] CommonFragments =
        ["th", "he", "in", "er", "an", "re", "on", "at", "en", "nd", "ed", "es", "or", "ou", "it", "st", "ar", "le",
         "ing", "ly", "ion", "ent", "ter", "ay", "ow", "ll"];

    private static readonly string[] CommonWords =
        ["the", "and", "a", "to", "was", "he", "she", "it", "of", "in", "they", "her", "his", "said", "with", "you",
         "that", "for", "on", "is", "had", "day", "one", "time", "big", "little", "happy", "play", "friend", "mom",
         "saw", "went", "very", "but", "so", "upon", "once", "there", "named", "girl", "boy", "wanted", "were", "not",
         "be", "at", "have", "all", "we", "are", "can", "do", "what", "up", "out", "go", "see", "like", "new", "look",
         "help", "from", "then", "could", "toy", "tree", "dog", "cat", "sun", "park", "ball", "fun", "home", "good",
         "love", "find", "made", "came", "Once", "The", "She", "He", "They", "I", "It", "Lily", "Tom", "Ben", "Sue",
         "this", "an", "him", "them", "their", "about", "would", "when", "who", "will", "my", "me", "if", "no", "yes",
         "some", "more", "other", "into", "over", "after", "just", "how", "because", "sky", "bird", "friends", "sad",
         "felt", "smiled", "asked", "played", "looked", "decided", "together", "learned", "always", "never", "again"];

    /// <summary>
    /// Writes <c>tokenizer.json</c>, <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c> into
    /// <paramref name="dir"/> (created if needed) for a vocabulary of exactly <paramref name="vocabSize"/> tokens.
    /// Below 354 tokens not all ASCII characters get a piece (they fall back to bytes); from 354 on, merges fill the rest.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabSize"/> is below <see cref="MinVocabSize"/>.</exception>
    public static void Write(string dir, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, MinVocabSize);
        var vocab = BuildVocabulary(vocabSize);
        Directory.CreateDirectory(dir);
        Save(Path.Combine(dir, "tokenizer.json"), BuildTokenizerJson(vocab));
        Save(Path.Combine(dir, "tokenizer_config.json"), TokenizerConfig());
        Save(Path.Combine(dir, "special_tokens_map.json"), SpecialTokensMap());
    }

    /// <summary>The pieces in id order and the merges in rank order.</summary>
    internal static Vocabulary BuildVocabulary(int vocabSize)
    {
        var v = new Vocabulary(vocabSize);
        foreach (string s in new[] { "<unk>", "<s>", "</s>" }) v.AddBase(s);
        for (int b = 0; b < 256; b++) v.AddBase(ByteTokens.Name((byte)b));
        foreach (char c in BaseCharacters) v.AddBase(c.ToString());
        for (char c = '!'; c <= '~'; c++) v.AddBase(c.ToString());
        // Words first and only as (▁prefix, letter) merges, so no fragment merge can split them: each is one token.
        foreach (string w in CommonWords) AddBuiltLeftToRight(v, "▁" + w);
        foreach (string f in CommonFragments) AddBuiltLeftToRight(v, f);
        foreach (var (left, right) in Filler())
        {
            if (v.Full) break;
            v.AddMerge(left, right);
        }
        return v;
    }

    // "▁the" is made by merging ▁+t, ▁t+h, ▁th+e: each left part exists before it is used.
    private static void AddBuiltLeftToRight(Vocabulary v, string piece)
    {
        for (int k = 2; k <= piece.Length; k++) v.AddMerge(piece[..(k - 1)], piece[(k - 1)..k]);
    }

    /// <summary>
    /// Lowercase strings by length, each merged from its prefix one shorter: '▁' + 1..3 letters first, then plain
    /// strings of 2..3 letters, then both kinds for longer lengths. The '▁' strings coming first keeps the first ~18k
    /// of them reachable by BPE; later pieces may not be (harmless for a random-weight model).
    /// </summary>
    private static IEnumerable<(string Left, string Right)> Filler()
    {
        for (int length = 1; length <= 3; length++)
        {
            foreach (string s in LowercaseStrings(length)) yield return ("▁" + s[..^1], s[^1..]);
        }
        for (int length = 2; length <= 3; length++)
        {
            foreach (string s in LowercaseStrings(length)) yield return (s[..^1], s[^1..]);
        }
        for (int length = 4; ; length++)
        {
            foreach (string s in LowercaseStrings(length)) yield return ("▁" + s[..^1], s[^1..]);
            foreach (string s in LowercaseStrings(length)) yield return (s[..^1], s[^1..]);
        }
    }

    private static IEnumerable<string> LowercaseStrings(int length)
    {
        long total = (long)Math.Pow(26, length);
        var chars = new char[length];
        for (long n = 0; n < total; n++)
        {
            long x = n;
            for (int i = length - 1; i >= 0; i--, x /= 26) chars[i] = (char)('a' + (int)(x % 26));
            yield return new string(chars);
        }
    }

    private static JsonObject BuildTokenizerJson(Vocabulary v)
    {
        var vocab = new JsonObject();
        for (int id = 0; id < v.Pieces.Count; id++) vocab[v.Pieces[id]] = id;
        var merges = new JsonArray();
        foreach (var (left, right) in v.Merges) merges.Add($"{left} {right}"); // legacy form, as Llama 2; no piece has a space
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(AddedToken(0, "<unk>"), AddedToken(1, "<s>"), AddedToken(2, "</s>")),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(SpecialItem(), SequenceItem("A")),
                ["pair"] = new JsonArray(SpecialItem(), SequenceItem("A"), SpecialItem(), SequenceItem("B")),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true,
                ["byte_fallback"] = true,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
    }

    private static JsonObject AddedToken(int id, string content) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = true,
    };

    private static JsonObject SpecialItem() =>
        new() { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } };

    private static JsonObject SequenceItem(string id) =>
        new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = 0 } };

    private static JsonObject TokenizerConfig() => new()
    {
        ["add_bos_token"] = true,
        ["add_eos_token"] = false,
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
        ["unk_token"] = "<unk>",
        ["pad_token"] = null,
        ["clean_up_tokenization_spaces"] = false,
        ["legacy"] = true,
        ["tokenizer_class"] = "LlamaTokenizer",
    };

    private static JsonObject SpecialTokensMap() => new()
    {
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
        ["unk_token"] = "<unk>",
    };

    private static void Save(string path, JsonObject json)
    {
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(path, json.ToJsonString(options) + "\n");
    }

    /// <summary>A vocabulary being built: pieces in id order, merges in rank order, never past the target size.</summary>
    internal sealed class Vocabulary(int target)
    {
        private readonly HashSet<string> known = new(StringComparer.Ordinal);

        public List<string> Pieces { get; } = [];

        public List<(string Left, string Right)> Merges { get; } = [];

        public bool Full => Pieces.Count >= target;

        public void AddBase(string piece)
        {
            if (!Full && known.Add(piece)) Pieces.Add(piece);
        }

        public void AddMerge(string left, string right)
        {
            if (Full || known.Contains(left + right)) return;
            Debug.Assert(known.Contains(left) && known.Contains(right), "a merge must combine existing pieces");
            known.Add(left + right);
            Pieces.Add(left + right);
            Merges.Add((left, right));
        }
    }
}
