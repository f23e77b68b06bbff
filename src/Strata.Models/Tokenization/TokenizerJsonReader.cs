using System.Text.Json;

namespace Strata.Models.Tokenization;

/// <summary>
/// Builds an <see cref="HfTokenizer"/> from a Hugging Face <c>tokenizer.json</c>. Written here rather than taken from
/// Microsoft.ML.Tokenizers because that library (2.0.1) has no loader for a whole tokenizer.json: its BpeTokenizer
/// lacks the normalizer/decoder chain, added-token matching and post-processor, and its LlamaTokenizer reads only
/// sentencepiece's tokenizer.model. Anything this reader does not implement fails with the field named.
/// </summary>
internal static class TokenizerJsonReader
{
    // A larger id means a corrupt file; refusing it avoids allocating a huge decode table.
    private const int MaxTokenId = 16_000_000;

    public static HfTokenizer Read(string path, SpecialTokenSettings settings)
    {
        try
        {
            return ReadDocument(path, settings);
        }
        catch (InvalidOperationException e)
        {
            // A name (a vocab piece, a merge) with bad UTF-8 or a lone surrogate escape: System.Text.Json decodes lazily.
            throw new ModelFormatException(path, null, $"holds text that is not valid Unicode: {e.Message}", e);
        }
    }

    private static HfTokenizer ReadDocument(string path, SpecialTokenSettings settings)
    {
        using var doc = TokenizerJson.Parse(path);
        var json = new TokenizerJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new ModelFormatException(path, null, "expected a JSON object");

        var modelJson = json.Object(TokenizerJson.Prop(root, "model"), "model");
        string type = json.OptString(TokenizerJson.Prop(modelJson, "type"), "model.type")
            ?? (TokenizerJson.Prop(modelJson, "merges") is not null ? "BPE" : throw json.Error("model.type", "required field is missing"));
        if (type != "BPE")
            throw json.Error("model.type", $"'{type}' is not supported (only BPE, sentencepiece-style or byte-level)");
        CheckUnsupportedOptions(json, modelJson);

        var vocab = ReadVocab(json, TokenizerJson.Prop(modelJson, "vocab"));
        var added = ReadAddedTokens(json, TokenizerJson.Prop(root, "added_tokens"));
        int? IdOf(string token) =>
            added.FirstOrDefault(t => t.Content == token)?.Id ?? (vocab.TryGetValue(token, out int id) ? id : null);

        string? unk = json.OptString(TokenizerJson.Prop(modelJson, "unk_token"), "model.unk_token");
        int? unkId = unk is null ? null : IdOf(unk) ?? throw json.Error("model.unk_token", $"'{unk}' is not in model.vocab");
        var model = new BpeModel(
            vocab,
            ReadMerges(json, TokenizerJson.Prop(modelJson, "merges"), vocab),
            unkId,
            json.Bool(TokenizerJson.Prop(modelJson, "fuse_unk"), "model.fuse_unk", false),
            json.Bool(TokenizerJson.Prop(modelJson, "byte_fallback"), "model.byte_fallback", false),
            json.Bool(TokenizerJson.Prop(modelJson, "ignore_merges"), "model.ignore_merges", false));

        var normalizer = Normalizers.Parse(json, TokenizerJson.Prop(root, "normalizer"), "normalizer");
        bool byteLevel = false;
        var preTokenizer = PreTokenizers.Parse(json, TokenizerJson.Prop(root, "pre_tokenizer"), "pre_tokenizer", ref byteLevel);

        int count = Math.Max(vocab.Values.Max(), added.Count == 0 ? 0 : added.Max(t => t.Id)) + 1;
        var pieces = new string?[count];
        foreach (var (piece, id) in vocab) pieces[id] = piece;
        foreach (var token in added) pieces[token.Id] = token.Content;
        var special = added.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        var decoding = TokenizerDecoders.Parse(json, TokenizerJson.Prop(root, "decoder"), byteLevel, pieces, special);

        var prefix = new List<int>();
        var suffix = new List<int>();
        ReadPostProcessor(json, TokenizerJson.Prop(root, "post_processor"), "post_processor", prefix, suffix);
        foreach (int id in prefix.Concat(suffix))
        {
            if (id < 0 || id >= count) throw json.Error("post_processor", $"special token id {id} is outside the vocabulary");
        }
        int? bos = settings.ResolveBos(IdOf);
        var stops = settings.ResolveStopIds(IdOf);
        settings.CheckIds(Path.GetDirectoryName(path)!, bos, stops, count);
        var (pre, post) = settings.AdjustTemplate(prefix, suffix, bos, settings.ResolveEos(IdOf));
        return new HfTokenizer(new AddedTokenMatcher(added), normalizer, preTokenizer, byteLevel, model,
            pre, post, decoding, bos, stops);
    }

    private static void CheckUnsupportedOptions(TokenizerJson json, JsonElement model)
    {
        if (TokenizerJson.Prop(model, "dropout") is { ValueKind: JsonValueKind.Number } d && d.GetDouble() != 0)
            throw json.Error("model.dropout", "BPE dropout is not supported (serving needs deterministic encoding)");
        foreach (string field in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (json.OptString(TokenizerJson.Prop(model, field), "model." + field) is { Length: > 0 } s)
                throw json.Error("model." + field, $"'{s}' is not supported (only sentencepiece-style or byte-level BPE)");
        }
    }

    private static Dictionary<string, int> ReadVocab(TokenizerJson json, JsonElement? value)
    {
        var obj = json.Object(value, "model.vocab");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in obj.EnumerateObject())
        {
            int id = json.Int(entry.Value, $"model.vocab[{JsonSerializer.Serialize(entry.Name)}]");
            if (id is < 0 or > MaxTokenId) throw json.Error($"model.vocab[{JsonSerializer.Serialize(entry.Name)}]", $"id {id} is out of range");
            vocab[entry.Name] = id;
        }
        if (vocab.Count == 0) throw json.Error("model.vocab", "is empty");
        return vocab;
    }

    private static Dictionary<long, (int Rank, int NewId)> ReadMerges(TokenizerJson json, JsonElement? value, Dictionary<string, int> vocab)
    {
        var merges = new Dictionary<long, (int Rank, int NewId)>();
        int rank = 0;
        foreach (var item in json.Array(value, "model.merges").EnumerateArray())
        {
            string path = $"model.merges[{rank}]";
            string left, right;
            if (item.ValueKind == JsonValueKind.String)
            {
                // Legacy form "a b": exactly one space, as HF requires (pieces then cannot contain spaces).
                string[] parts = json.Text(item, path).Split(' ');
                if (parts.Length != 2) throw json.Error(path, $"expected \"left right\", got {TokenizerJson.Raw(item)}");
                (left, right) = (parts[0], parts[1]);
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() == 2)
            {
                (left, right) = (json.String(item[0], path + "[0]"), json.String(item[1], path + "[1]"));
            }
            else
            {
                throw json.Error(path, $"expected \"left right\" or [\"left\", \"right\"], got {TokenizerJson.Raw(item)}");
            }
            int l = vocab.TryGetValue(left, out int a) ? a : throw json.Error(path, $"'{left}' is not in model.vocab");
            int r = vocab.TryGetValue(right, out int b) ? b : throw json.Error(path, $"'{right}' is not in model.vocab");
            int merged = vocab.TryGetValue(left + right, out int c) ? c : throw json.Error(path, $"'{left + right}' is not in model.vocab");
            merges[BpeModel.PairKey(l, r)] = (rank, merged); // a repeated pair: the later rank wins, as in HF
            rank++;
        }
        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(TokenizerJson json, JsonElement? value)
    {
        var tokens = new List<AddedToken>();
        if (value is null) return tokens;
        int i = 0;
        foreach (var item in json.Array(value, "added_tokens").EnumerateArray())
        {
            string path = $"added_tokens[{i++}]";
            var obj = json.Object(item, path);
            int id = json.Int(TokenizerJson.Prop(obj, "id"), path + ".id");
            if (id is < 0 or > MaxTokenId) throw json.Error(path + ".id", $"id {id} is out of range");
            tokens.Add(new AddedToken(
                id,
                json.String(TokenizerJson.Prop(obj, "content"), path + ".content"),
                json.Bool(TokenizerJson.Prop(obj, "special"), path + ".special", false),
                json.Bool(TokenizerJson.Prop(obj, "lstrip"), path + ".lstrip", false),
                json.Bool(TokenizerJson.Prop(obj, "rstrip"), path + ".rstrip", false),
                json.Bool(TokenizerJson.Prop(obj, "single_word"), path + ".single_word", false)));
        }
        return tokens;
    }

    /// <summary>Collects the special ids the post-processor puts before and after a single sequence.</summary>
    private static void ReadPostProcessor(TokenizerJson json, JsonElement? value, string path, List<int> prefix, List<int> suffix)
    {
        if (value is not { } element) return;
        string type = json.TypeOf(element, path);
        switch (type)
        {
            case "ByteLevel":
                return; // only adjusts offsets
            case "Sequence":
                int i = 0;
                foreach (var item in json.Array(TokenizerJson.Prop(element, "processors"), path + ".processors").EnumerateArray())
                    ReadPostProcessor(json, item, $"{path}.processors[{i++}]", prefix, suffix);
                return;
            case "TemplateProcessing":
                var specials = json.Object(TokenizerJson.Prop(element, "special_tokens"), path + ".special_tokens");
                bool afterSequence = false;
                int k = 0;
                foreach (var item in json.Array(TokenizerJson.Prop(element, "single"), path + ".single").EnumerateArray())
                {
                    string itemPath = $"{path}.single[{k++}]";
                    if (TokenizerJson.Prop(item, "Sequence") is not null)
                    {
                        afterSequence = true;
                    }
                    else if (TokenizerJson.Prop(item, "SpecialToken") is { } st)
                    {
                        string name = json.String(TokenizerJson.Prop(st, "id"), itemPath + ".SpecialToken.id");
                        string entryPath = $"{path}.special_tokens[{JsonSerializer.Serialize(name)}]";
                        var entry = json.Object(TokenizerJson.Prop(specials, name), entryPath);
                        (afterSequence ? suffix : prefix).AddRange(json.IntOrList(TokenizerJson.Prop(entry, "ids"), entryPath + ".ids"));
                    }
                    else
                    {
                        throw json.Error(itemPath, "expected a Sequence or SpecialToken item");
                    }
                }
                return;
            default:
                throw json.Error(path + ".type",
                    $"'{type}' is not supported (supported post-processors: TemplateProcessing, ByteLevel, Sequence)");
        }
    }
}
