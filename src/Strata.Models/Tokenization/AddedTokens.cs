namespace Strata.Models.Tokenization;

/// <summary>One entry of <c>tokenizer.json</c>'s <c>added_tokens</c>.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool SingleWord);

/// <summary>A piece of input: either plain text to normalize and encode, or one added token.</summary>
internal readonly record struct Segment(int Start, string Text, int? TokenId);

/// <summary>
/// Finds added tokens in raw text, leftmost first and longest at a position (HF's Aho-Corasick is
/// leftmost-longest), and splits the text around them. HF matches tokens marked <c>normalized: true</c> on the
/// normalized text instead; matching every token on the raw text gives the same result for the normalizers in use
/// (none of them touch the characters special tokens are made of), with one pass and no offset mapping.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    /// <summary>Splits <paramref name="text"/>; empty text segments are dropped.</summary>
    public List<Segment> Split(string text)
    {
        var segments = new List<Segment>();
        int segmentStart = 0;
        int i = 0;
        while (i < text.Length)
        {
            if (!byFirstChar.TryGetValue(text[i], out var candidates) || Match(text, i, candidates) is not { } token)
            {
                i++;
                continue;
            }
            int start = i;
            int end = i + token.Content.Length;
            if (token.LStrip)
            {
                while (start > segmentStart && char.IsWhiteSpace(text[start - 1])) start--;
            }
            if (token.RStrip)
            {
                while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            }
            if (start > segmentStart) segments.Add(new Segment(segmentStart, text[segmentStart..start], null));
            segments.Add(new Segment(start, token.Content, token.Id));
            segmentStart = i = end;
        }
        if (segmentStart < text.Length) segments.Add(new Segment(segmentStart, text[segmentStart..], null));
        return segments;
    }

    private static AddedToken? Match(string text, int at, AddedToken[] candidates)
    {
        foreach (var token in candidates)
        {
            if (at + token.Content.Length > text.Length
                || string.CompareOrdinal(text, at, token.Content, 0, token.Content.Length) != 0)
            {
                continue;
            }
            // single_word: the match must not be glued to word characters on either side.
            if (token.SingleWord
                && ((at > 0 && IsWordChar(text[at - 1]))
                    || (at + token.Content.Length < text.Length && IsWordChar(text[at + token.Content.Length]))))
            {
                continue;
            }
            return token;
        }
        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
