using System.Text.Json;
using System.Text.Json.Nodes;
using Strata.Models.Config;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// A GGUF file's tokenizer (<c>tokenizer.ggml.*</c>) as the Hugging Face files Strata's tokenizer loader reads:
/// <c>tokenizer.json</c>, <c>tokenizer_config.json</c> (with <c>tokenizer.chat_template</c>), and the model's
/// <c>config.json</c> and <c>generation_config.json</c>.
/// </summary>
/// <remarks>
/// <c>tokenizer.ggml.model = llama</c> (sentencepiece BPE: tokens, scores, token types) becomes a sentencepiece-style
/// BPE tokenizer.json with byte fallback, whose merges are derived from the scores as transformers' converter does
/// (every split of a piece into two pieces of the vocabulary, by the piece's score, highest first).
/// <c>tokenizer.ggml.model = gpt2</c> (byte-level BPE: tokens and merges) becomes a byte-level one, with the split
/// pattern that <c>tokenizer.ggml.pre</c> names (<c>llama-bpe</c>, <c>qwen2</c>, or GPT-2's).
/// </remarks>
public static class GgufTokenizerFiles
{
    /// <summary>The files <see cref="Write"/> creates.</summary>
    public static readonly IReadOnlyList<string> FileNames = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"];

    // llama.cpp's token types.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Byte = 6;

    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The pre-tokenizer names (<c>tokenizer.ggml.pre</c>) of byte-level tokenizers that are supported.</summary>
    public static readonly IReadOnlyList<string> PreTokenizers = ["default", "gpt2", "llama-bpe", "llama3", "qwen2"];

    private sealed record Vocabulary(string Model, string[] Tokens, int[] Types, float[]? Scores, string[]? Merges);

    /// <summary>Checks the tokenizer metadata without writing anything.</summary>
    /// <exception cref="ModelFormatException">A key is missing or inconsistent (the message names it).</exception>
    public static void Check(GgufMetadata m, LlamaConfig config) => Read(m, config);

    private static Vocabulary Read(GgufMetadata m, LlamaConfig config)
    {
        string model = m.OptionalString("tokenizer.ggml.model") ?? throw m.Error("tokenizer.ggml.model", "required key is missing");
        if (model is not ("llama" or "gpt2"))
            throw m.Error("tokenizer.ggml.model", $"tokenizer model '{model}' is not supported (llama or gpt2)");
        var tokens = m.OptionalArray<string>("tokenizer.ggml.tokens") ?? throw m.Error("tokenizer.ggml.tokens", "required key is missing");
        if (tokens.Length != config.VocabSize)
            throw m.Error("tokenizer.ggml.tokens", $"{tokens.Length} tokens, but the model's vocabulary has {config.VocabSize}");
        var types = m.OptionalIntArray("tokenizer.ggml.token_type") ?? Enumerable.Repeat(Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length)
            throw m.Error("tokenizer.ggml.token_type", $"{types.Length} entries for {tokens.Length} tokens");
        var scores = m.OptionalFloatArray("tokenizer.ggml.scores");
        if (scores is not null && scores.Length != tokens.Length)
            throw m.Error("tokenizer.ggml.scores", $"{scores.Length} entries for {tokens.Length} tokens");
        if (model == "llama" && scores is null) throw m.Error("tokenizer.ggml.scores", "required key is missing (a llama tokenizer merges by score)");
        var merges = m.OptionalArray<string>("tokenizer.ggml.merges");
        if (model == "gpt2")
        {
            if (merges is null) throw m.Error("tokenizer.ggml.merges", "required key is missing (a gpt2 tokenizer needs merges)");
            string pre = m.OptionalString("tokenizer.ggml.pre") ?? "default";
            if (!PreTokenizers.Contains(pre))
                throw m.Error("tokenizer.ggml.pre", $"pre-tokenizer '{pre}' is not supported ({string.Join(", ", PreTokenizers)})");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!seen.Add(tokens[i])) throw m.Error($"tokenizer.ggml.tokens[{i}]", $"token '{tokens[i]}' appears twice");
        }
        foreach (string key in new[] { "bos", "eos", "unknown", "padding", "eot" })
        {
            if (m.OptionalId($"tokenizer.ggml.{key}_token_id") is int id && id >= tokens.Length)
                throw m.Error($"tokenizer.ggml.{key}_token_id", $"id {id} is outside the vocabulary of {tokens.Length}");
        }
        return new Vocabulary(model, tokens, types, scores, merges);
    }

    /// <summary>Writes <see cref="FileNames"/> into <paramref name="dir"/>.</summary>
    public static void Write(GgufMetadata m, LlamaConfig config, string dir)
    {
        var v = Read(m, config);
        int? bos = m.OptionalId("tokenizer.ggml.bos_token_id");
        int? eos = m.OptionalId("tokenizer.ggml.eos_token_id");
        int? eot = m.OptionalId("tokenizer.ggml.eot_token_id");
        int? unk = m.OptionalId("tokenizer.ggml.unknown_token_id");
        bool spm = v.Model == "llama";
        bool addBos = m.OptionalBool("tokenizer.ggml.add_bos_token") ?? spm;
        bool addEos = m.OptionalBool("tokenizer.ggml.add_eos_token") ?? false;

        var tokenizer = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = AddedTokens(v),
            ["normalizer"] = spm ? SpmNormalizer(m.OptionalBool("tokenizer.ggml.add_space_prefix") ?? true) : null,
            ["pre_tokenizer"] = spm ? null : BytePreTokenizer(m.OptionalString("tokenizer.ggml.pre") ?? "default"),
            ["post_processor"] = PostProcessor(v, addBos ? bos : null, addEos ? eos : null, spm),
            ["decoder"] = spm ? SpmDecoder(m.OptionalBool("tokenizer.ggml.add_space_prefix") ?? true) : ByteLevel(true),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = spm && (unk ?? Array.IndexOf(v.Types, Unknown)) is int u and >= 0 ? v.Tokens[u] : null,
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = spm,
                ["byte_fallback"] = spm && v.Types.Contains(Byte),
                // llama.cpp's Llama 3 pre-tokenizer takes a word that is in the vocabulary whole, as Hugging Face's
                // tokenizer.json for Llama 3 says with ignore_merges.
                ["ignore_merges"] = !spm && (m.OptionalString("tokenizer.ggml.pre") is "llama-bpe" or "llama3"),
                ["vocab"] = Vocab(v.Tokens),
                ["merges"] = spm ? ScoreMerges(v) : FileMerges(m, v.Merges!),
            },
        };
        var tokenizerConfig = new JsonObject
        {
            ["add_bos_token"] = addBos,
            ["add_eos_token"] = addEos,
            ["model_max_length"] = config.MaxPositionEmbeddings,
            ["clean_up_tokenization_spaces"] = false,
        };
        // Absent ids leave their keys out, so that the loader falls back as for any Hugging Face folder.
        if (bos is int b) tokenizerConfig["bos_token"] = v.Tokens[b];
        if (eos is int e) tokenizerConfig["eos_token"] = v.Tokens[e];
        if (unk is int uu) tokenizerConfig["unk_token"] = v.Tokens[uu];
        if (m.OptionalString("tokenizer.chat_template") is { } template) tokenizerConfig["chat_template"] = template;
        var stops = new[] { eos, eot }.Where(i => i is not null).Select(i => i!.Value).Distinct().ToList();
        var generation = new JsonObject();
        if (bos is int gb) generation["bos_token_id"] = gb;
        if (stops.Count == 1) generation["eos_token_id"] = stops[0];
        else if (stops.Count > 1) generation["eos_token_id"] = new JsonArray(stops.Select(i => (JsonNode)i).ToArray());

        WriteJson(Path.Combine(dir, "tokenizer.json"), tokenizer, indented: false);
        WriteJson(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig, indented: true);
        WriteJson(Path.Combine(dir, "generation_config.json"), generation, indented: true);
        WriteJson(Path.Combine(dir, "config.json"), config.ToJson(), indented: true);
    }

    private static void WriteJson(string path, JsonNode node, bool indented) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = indented }) + "\n");

    private static JsonArray AddedTokens(Vocabulary v)
    {
        var result = new JsonArray();
        for (int i = 0; i < v.Tokens.Length; i++)
        {
            if (v.Types[i] is not (Unknown or Control or UserDefined)) continue;
            result.Add(new JsonObject
            {
                ["id"] = i,
                ["content"] = v.Tokens[i],
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = v.Types[i] == UserDefined,
                ["special"] = v.Types[i] != UserDefined,
            });
        }
        return result;
    }

    private static JsonObject Vocab(string[] tokens)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < tokens.Length; i++) vocab[tokens[i]] = i;
        return vocab;
    }

    private static JsonObject SpmNormalizer(bool addSpacePrefix)
    {
        var replace = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" };
        var parts = new JsonArray();
        if (addSpacePrefix) parts.Add(new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" });
        parts.Add(replace);
        return new JsonObject { ["type"] = "Sequence", ["normalizers"] = parts };
    }

    private static JsonObject SpmDecoder(bool addSpacePrefix)
    {
        var parts = new JsonArray
        {
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
            new JsonObject { ["type"] = "ByteFallback" },
            new JsonObject { ["type"] = "Fuse" },
        };
        if (addSpacePrefix) parts.Add(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });
        return new JsonObject { ["type"] = "Sequence", ["decoders"] = parts };
    }

    private static JsonObject ByteLevel(bool useRegex) => new()
    {
        ["type"] = "ByteLevel",
        ["add_prefix_space"] = false,
        ["trim_offsets"] = true,
        ["use_regex"] = useRegex,
    };

    private static JsonObject BytePreTokenizer(string pre)
    {
        string? pattern = pre switch
        {
            "llama-bpe" or "llama3" => Llama3Pattern,
            "qwen2" => Qwen2Pattern,
            _ => null,
        };
        if (pattern is null) return ByteLevel(true);
        return new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray
            {
                new JsonObject
                {
                    ["type"] = "Split",
                    ["pattern"] = new JsonObject { ["Regex"] = pattern },
                    ["behavior"] = "Isolated",
                    ["invert"] = false,
                },
                ByteLevel(false),
            },
        };
    }

    private static JsonNode? PostProcessor(Vocabulary v, int? bos, int? eos, bool spm)
    {
        if (bos is null && eos is null) return spm ? null : ByteLevel(true);
        var single = new JsonArray();
        var specials = new JsonObject();
        void Special(int id)
        {
            single.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = v.Tokens[id], ["type_id"] = 0 } });
            specials[v.Tokens[id]] = new JsonObject { ["id"] = v.Tokens[id], ["ids"] = new JsonArray(id), ["tokens"] = new JsonArray(v.Tokens[id]) };
        }
        if (bos is int b) Special(b);
        single.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } });
        if (eos is int e) Special(e);
        return new JsonObject { ["type"] = "TemplateProcessing", ["single"] = single, ["pair"] = single.DeepClone(), ["special_tokens"] = specials };
    }

    private static JsonArray FileMerges(GgufMetadata m, string[] merges)
    {
        var result = new JsonArray();
        for (int i = 0; i < merges.Length; i++)
        {
            string[] parts = merges[i].Split(' ');
            if (parts.Length != 2) throw m.Error($"tokenizer.ggml.merges[{i}]", $"expected \"left right\", got \"{merges[i]}\"");
            result.Add(new JsonArray(parts[0], parts[1]));
        }
        return result;
    }

    /// <summary>
    /// Merges implied by sentencepiece scores, as transformers' SentencePieceExtractor derives them: every split of a
    /// normal piece into two normal pieces, ordered by the piece's score (highest first), then by the ids of the two.
    /// </summary>
    internal static JsonArray ScoreMerges(string[] tokens, int[] types, float[] scores)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) if (types[i] == Normal) ids[tokens[i]] = i;
        var merges = new List<(int Left, int Right, float Score)>();
        var local = new List<(int Left, int Right, float Score)>();
        for (int i = 0; i < tokens.Length; i++)
        {
            if (types[i] != Normal) continue;
            string piece = tokens[i];
            local.Clear();
            for (int k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k])) continue; // split between code points only
                if (ids.TryGetValue(piece[..k], out int l) && ids.TryGetValue(piece[k..], out int r)) local.Add((l, r, scores[i]));
            }
            merges.AddRange(local.OrderBy(x => x.Left).ThenBy(x => x.Right));
        }
        var result = new JsonArray();
        foreach (var (l, r, _) in merges.OrderByDescending(x => x.Score)) result.Add(new JsonArray(tokens[l], tokens[r]));
        return result;
    }

    private static JsonArray ScoreMerges(Vocabulary v) => ScoreMerges(v.Tokens, v.Types, v.Scores!);
}
