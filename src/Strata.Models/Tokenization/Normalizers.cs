using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Strata.Models.Tokenization;

/// <summary>A Hugging Face normalizer: rewrites one segment of text (between added tokens) before pre-tokenization.</summary>
internal interface ITextNormalizer
{
    string Normalize(string text);
}

/// <summary>Builds normalizers from <c>tokenizer.json</c>'s <c>normalizer</c> field.</summary>
internal static class Normalizers
{
    /// <summary>The normalizer described at <paramref name="path"/>, or null when there is none.</summary>
    public static ITextNormalizer? Parse(TokenizerJson json, JsonElement? value, string path)
    {
        if (value is not { } element) return null;
        string type = json.TypeOf(element, path);
        switch (type)
        {
            case "Sequence":
                var parts = new List<ITextNormalizer>();
                int i = 0;
                foreach (var item in json.Array(TokenizerJson.Prop(element, "normalizers"), path + ".normalizers").EnumerateArray())
                {
                    if (Parse(json, item, $"{path}.normalizers[{i++}]") is { } n) parts.Add(n);
                }
                return new SequenceNormalizer(parts);
            case "Prepend":
                return new PrependNormalizer(json.String(TokenizerJson.Prop(element, "prepend"), path + ".prepend"));
            case "Replace":
                return new ReplaceNormalizer(
                    StringOrRegex.Parse(json, TokenizerJson.Prop(element, "pattern"), path + ".pattern"),
                    json.String(TokenizerJson.Prop(element, "content"), path + ".content"));
            case "NFC":
                return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD":
                return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC":
                return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD":
                return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase":
                return new LowercaseNormalizer();
            default:
                throw json.Error(path + ".type",
                    $"'{type}' is not supported (supported normalizers: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase)");
        }
    }

    private sealed class SequenceNormalizer(IReadOnlyList<ITextNormalizer> parts) : ITextNormalizer
    {
        public string Normalize(string text)
        {
            foreach (var part in parts) text = part.Normalize(text);
            return text;
        }
    }

    // HF's Prepend adds its text only to a non-empty string: that is why "" encodes to [BOS] alone.
    private sealed class PrependNormalizer(string prepend) : ITextNormalizer
    {
        public string Normalize(string text) => text.Length == 0 ? text : prepend + text;
    }

    private sealed class ReplaceNormalizer(StringOrRegex pattern, string content) : ITextNormalizer
    {
        public string Normalize(string text) => pattern.Replace(text, content);
    }

    // Note: under InvariantGlobalization (set for the whole repo) .NET cannot normalize non-ASCII text and returns it
    // unchanged. Qwen2's NFC is then a no-op, which is exact for text already in NFC (nearly all real prompts).
    private sealed class UnicodeNormalizer(NormalizationForm form) : ITextNormalizer
    {
        public string Normalize(string text) => text.Normalize(form);
    }

    private sealed class LowercaseNormalizer : ITextNormalizer
    {
        public string Normalize(string text) => text.ToLowerInvariant();
    }
}

/// <summary>The <c>pattern</c> of Replace and Split: <c>{"String": "..."}</c> or <c>{"Regex": "..."}</c>.</summary>
internal sealed class StringOrRegex
{
    /// <summary>How long one match may take. A pattern that backtracks catastrophically (e.g. <c>(a+)+$</c>) would
    /// otherwise hold a request's thread for hours on some prompts; real tokenizer patterns take microseconds.</summary>
    internal static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    private readonly string? literal;
    private readonly Regex? regex;
    private readonly string where;
    private readonly string field;

    private StringOrRegex(string? literal, Regex? regex, string where, string field)
    {
        this.literal = literal;
        this.regex = regex;
        this.where = where;
        this.field = field;
    }

    public static StringOrRegex Parse(TokenizerJson json, JsonElement? value, string path)
    {
        var obj = json.Object(value, path);
        if (TokenizerJson.Prop(obj, "String") is { } s)
            return new StringOrRegex(json.String(s, path + ".String"), null, json.File, path);
        string pattern = json.String(TokenizerJson.Prop(obj, "Regex"), path + ".Regex");
        try
        {
            return FromRegex(pattern, json.File, path + ".Regex");
        }
        catch (ArgumentException ex)
        {
            throw new ModelFormatException(json.File, path + ".Regex", $"not a valid regular expression: {ex.Message}", ex);
        }
    }

    // HF patterns are Oniguruma syntax; the ones in use (GPT-2, Llama 3, Qwen2) mean the same in .NET, except
    // that .NET matches UTF-16 units, so a letter outside the BMP is not \p{L} here (emoji behave the same).
    public static StringOrRegex FromRegex(string pattern, string file, string field) =>
        new(null, new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, MatchTimeout),
            // Errors at encode time reach clients: name the file, not the silo's path to it.
            Path.GetFileName(file), field);

    public string Replace(string text, string content)
    {
        if (literal is not null) return literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal);
        try
        {
            return regex!.Replace(text, content.Replace("$", "$$", StringComparison.Ordinal)); // HF's content is literal
        }
        catch (RegexMatchTimeoutException)
        {
            throw TooSlow();
        }
    }

    private ModelFormatException TooSlow() =>
        new(where, field, $"the regular expression ran for more than {MatchTimeout.TotalSeconds} s on one piece of the input: it backtracks catastrophically; fix the pattern");

    /// <summary>Calls <paramref name="onMatch"/> with (start, length) of every non-empty match, left to right.</summary>
    public void Matches(string text, Action<int, int> onMatch)
    {
        if (regex is not null)
        {
            try
            {
                foreach (var m in regex.EnumerateMatches(text))
                {
                    if (m.Length > 0) onMatch(m.Index, m.Length);
                }
            }
            catch (RegexMatchTimeoutException)
            {
                throw TooSlow();
            }
            return;
        }
        if (literal!.Length == 0) return;
        for (int at = text.IndexOf(literal, StringComparison.Ordinal); at >= 0;
             at = text.IndexOf(literal, at + literal.Length, StringComparison.Ordinal))
        {
            onMatch(at, literal.Length);
        }
    }
}
