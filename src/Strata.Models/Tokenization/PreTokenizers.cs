using System.Text.Json;

namespace Strata.Models.Tokenization;

/// <summary>A Hugging Face pre-tokenizer: splits a normalized segment into the words BPE runs on.</summary>
internal interface IPreTokenizer
{
    /// <param name="text">One normalized segment.</param>
    /// <param name="atStart">Whether the segment begins the input (Metaspace's <c>prepend_scheme: first</c>).</param>
    /// <param name="words">Receives the words, in order.</param>
    void Split(string text, bool atStart, List<string> words);
}

/// <summary>Builds pre-tokenizers from <c>tokenizer.json</c>'s <c>pre_tokenizer</c> field.</summary>
internal static class PreTokenizers
{
    // GPT-2's split pattern, used by ByteLevel when use_regex is true (HF's default).
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>The pre-tokenizer at <paramref name="path"/>; null means the whole segment is one word.</summary>
    /// <param name="json">The file being read, for errors.</param>
    /// <param name="value">The JSON value, or null when absent.</param>
    /// <param name="path">The field path, for errors.</param>
    /// <param name="byteLevel">Set when a ByteLevel pre-tokenizer appears (the byte-level model kind).</param>
    public static IPreTokenizer? Parse(TokenizerJson json, JsonElement? value, string path, ref bool byteLevel)
    {
        if (value is not { } element) return null;
        string type = json.TypeOf(element, path);
        switch (type)
        {
            case "Sequence":
                var parts = new List<IPreTokenizer>();
                int i = 0;
                foreach (var item in json.Array(TokenizerJson.Prop(element, "pretokenizers"), path + ".pretokenizers").EnumerateArray())
                {
                    if (Parse(json, item, $"{path}.pretokenizers[{i++}]", ref byteLevel) is { } p) parts.Add(p);
                }
                return new SequencePreTokenizer(parts);
            case "ByteLevel":
                byteLevel = true;
                bool useRegex = json.Bool(TokenizerJson.Prop(element, "use_regex"), path + ".use_regex", true);
                return new ByteLevelPreTokenizer(
                    json.Bool(TokenizerJson.Prop(element, "add_prefix_space"), path + ".add_prefix_space", false),
                    useRegex ? StringOrRegex.FromRegex(Gpt2Pattern, json.File, path) : null);
            case "Split":
                if (json.Bool(TokenizerJson.Prop(element, "invert"), path + ".invert", false))
                    throw json.Error(path + ".invert", "true is not supported");
                string behavior = json.String(TokenizerJson.Prop(element, "behavior"), path + ".behavior");
                if (behavior is not ("Isolated" or "Removed"))
                    throw json.Error(path + ".behavior", $"'{behavior}' is not supported (supported: Isolated, Removed)");
                return new SplitPreTokenizer(
                    StringOrRegex.Parse(json, TokenizerJson.Prop(element, "pattern"), path + ".pattern"), behavior == "Removed");
            case "Metaspace":
                return ParseMetaspace(json, element, path);
            default:
                throw json.Error(path + ".type",
                    $"'{type}' is not supported (supported pre-tokenizers: Sequence, ByteLevel, Split, Metaspace)");
        }
    }

    private static MetaspacePreTokenizer ParseMetaspace(TokenizerJson json, JsonElement element, string path)
    {
        string replacement = json.String(TokenizerJson.Prop(element, "replacement"), path + ".replacement");
        if (replacement.Length != 1) throw json.Error(path + ".replacement", $"expected one character, got '{replacement}'");
        // Older files say add_prefix_space instead of prepend_scheme.
        string scheme = json.OptString(TokenizerJson.Prop(element, "prepend_scheme"), path + ".prepend_scheme")
            ?? (json.Bool(TokenizerJson.Prop(element, "add_prefix_space"), path + ".add_prefix_space", true) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never"))
            throw json.Error(path + ".prepend_scheme", $"'{scheme}' is not supported (expected always, first or never)");
        return new MetaspacePreTokenizer(replacement[0], scheme,
            json.Bool(TokenizerJson.Prop(element, "split"), path + ".split", true));
    }

    private sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> parts) : IPreTokenizer
    {
        public void Split(string text, bool atStart, List<string> words)
        {
            List<string> current = [text];
            var next = new List<string>();
            foreach (var part in parts)
            {
                next.Clear();
                for (int i = 0; i < current.Count; i++) part.Split(current[i], atStart && i == 0, next);
                (current, next) = (next, current);
            }
            words.AddRange(current);
        }
    }

    private sealed class SplitPreTokenizer(StringOrRegex pattern, bool removeMatches) : IPreTokenizer
    {
        public void Split(string text, bool atStart, List<string> words)
        {
            int last = 0;
            pattern.Matches(text, (start, length) =>
            {
                if (start > last) words.Add(text[last..start]);
                if (!removeMatches) words.Add(text.Substring(start, length));
                last = start + length;
            });
            if (last < text.Length) words.Add(text[last..]);
        }
    }

    // The byte-to-character mapping itself happens just before BPE (HfTokenizer), so words stay plain text here.
    private sealed class ByteLevelPreTokenizer(bool addPrefixSpace, StringOrRegex? regex) : IPreTokenizer
    {
        private readonly SplitPreTokenizer? splitter = regex is null ? null : new SplitPreTokenizer(regex, removeMatches: false);

        public void Split(string text, bool atStart, List<string> words)
        {
            if (addPrefixSpace && !text.StartsWith(' ')) text = " " + text;
            if (splitter is null)
            {
                if (text.Length > 0) words.Add(text);
                return;
            }
            splitter.Split(text, atStart, words);
        }
    }

    private sealed class MetaspacePreTokenizer(char replacement, string scheme, bool split) : IPreTokenizer
    {
        public void Split(string text, bool atStart, List<string> words)
        {
            text = text.Replace(' ', replacement);
            bool prepend = scheme == "always" || (scheme == "first" && atStart);
            if (prepend && text.Length > 0 && text[0] != replacement) text = replacement + text;
            if (!split)
            {
                if (text.Length > 0) words.Add(text);
                return;
            }
            // Each replacement character starts a new word (HF's MergedWithNext split on it).
            int start = 0;
            for (int i = 1; i <= text.Length; i++)
            {
                if (i == text.Length || text[i] == replacement)
                {
                    words.Add(text[start..i]);
                    start = i;
                }
            }
        }
    }
}
