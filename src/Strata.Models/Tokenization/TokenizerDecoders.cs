using System.Text.Json;

namespace Strata.Models.Tokenization;

/// <summary>
/// Reads <c>tokenizer.json</c>'s <c>decoder</c> into a <see cref="TokenDecoding"/>. Only the two chains Strata's
/// model kinds use are accepted: ByteLevel, or sentencepiece's Replace('▁', ' ') / ByteFallback / Fuse / Strip
/// (or the equivalent Metaspace). Those reduce to per-id bytes, which streaming needs; a general decoder chain
/// would not.
/// </summary>
internal static class TokenizerDecoders
{
    private sealed class Spec
    {
        public bool ByteLevel;
        public bool ReplaceMeta;
        public bool ByteFallback;
        public int Strip;
    }

    public static TokenDecoding Parse(TokenizerJson json, JsonElement? value, bool byteLevelPreTokenizer, string?[] pieces, ISet<int> special)
    {
        if (value is not { } element) throw json.Error("decoder", "required field is missing (needed to turn ids into text)");
        var spec = new Spec();
        Apply(json, element, "decoder", spec);
        if (spec.ByteLevel && (spec.ReplaceMeta || spec.ByteFallback || spec.Strip > 0))
            throw json.Error("decoder", "ByteLevel combined with sentencepiece decoders is not supported");
        if (spec.ByteLevel != byteLevelPreTokenizer)
        {
            throw json.Error("decoder", spec.ByteLevel
                ? "a ByteLevel decoder needs a ByteLevel pre_tokenizer"
                : "a ByteLevel pre_tokenizer needs a ByteLevel decoder");
        }
        return spec.ByteLevel
            ? TokenDecoding.ByteLevel(pieces, special)
            : TokenDecoding.SentencePiece(pieces, special, spec.ReplaceMeta, spec.ByteFallback, spec.Strip);
    }

    private static void Apply(TokenizerJson json, JsonElement element, string path, Spec spec)
    {
        string type = json.TypeOf(element, path);
        switch (type)
        {
            case "Sequence":
                int i = 0;
                foreach (var item in json.Array(TokenizerJson.Prop(element, "decoders"), path + ".decoders").EnumerateArray())
                    Apply(json, item, $"{path}.decoders[{i++}]", spec);
                return;
            case "ByteLevel":
                spec.ByteLevel = true;
                return;
            case "ByteFallback":
                spec.ByteFallback = true;
                return;
            case "Fuse":
                return; // joining pieces is what decoding to one string does anyway
            case "Replace":
                var pattern = json.Object(TokenizerJson.Prop(element, "pattern"), path + ".pattern");
                string? from = json.OptString(TokenizerJson.Prop(pattern, "String"), path + ".pattern.String");
                string to = json.String(TokenizerJson.Prop(element, "content"), path + ".content");
                if (from != "▁" || to != " ")
                    throw json.Error(path, "only Replace('▁', ' ') is supported");
                spec.ReplaceMeta = true;
                return;
            case "Strip":
                string content = json.String(TokenizerJson.Prop(element, "content"), path + ".content");
                int start = json.OptInt(TokenizerJson.Prop(element, "start"), path + ".start") ?? 0;
                int stop = json.OptInt(TokenizerJson.Prop(element, "stop"), path + ".stop") ?? 0;
                if (content != " " || stop != 0 || start < 0)
                    throw json.Error(path, "only Strip of leading spaces (content ' ', stop 0) is supported");
                spec.Strip = start;
                return;
            case "Metaspace":
                string replacement = json.String(TokenizerJson.Prop(element, "replacement"), path + ".replacement");
                if (replacement != "▁") throw json.Error(path + ".replacement", $"only '▁' is supported, got '{replacement}'");
                string scheme = json.OptString(TokenizerJson.Prop(element, "prepend_scheme"), path + ".prepend_scheme")
                    ?? (json.Bool(TokenizerJson.Prop(element, "add_prefix_space"), path + ".add_prefix_space", true) ? "always" : "never");
                spec.ReplaceMeta = true;
                spec.ByteFallback = true; // HF's Metaspace alone would print "<0x0A>" literally, never what a model means
                if (scheme != "never") spec.Strip = 1;
                return;
            default:
                throw json.Error(path + ".type",
                    $"'{type}' is not supported (supported decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
        }
    }
}
