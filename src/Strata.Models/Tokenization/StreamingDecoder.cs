using System.Text;

namespace Strata.Models.Tokenization;

/// <summary>
/// Turns generated ids into text as they arrive. <see cref="Push"/> returns only text that is complete:
/// bytes of a UTF-8 character split over byte-fallback tokens (<c>&lt;0xE2&gt;&lt;0x80&gt;...</c>) are held until
/// the character is whole, so no half character (U+FFFD) is ever sent for valid output. The leading-space strip of
/// sentencepiece decoding applies once, at the start of the whole output. The concatenation of every
/// <see cref="Push"/> result and <see cref="Flush"/> equals <see cref="ITokenizer.Decode"/> of all the ids.
/// One instance per sequence; not thread-safe.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly TokenDecoding decoding;
    private readonly Decoder utf8;
    private int stripRemaining;
    private char[] chars = new char[16];

    internal StreamingDecoder(TokenDecoding decoding, Decoder utf8)
    {
        this.decoding = decoding;
        this.utf8 = utf8;
        stripRemaining = decoding.StripLeadingSpaces;
    }

    /// <summary>Adds one id; returns the text that became complete (often empty while a character is pending).</summary>
    public string Push(int id) => Emit(decoding.Bytes(id), flush: false);

    /// <summary>
    /// Ends the sequence: bytes still pending (output that stopped mid-character) come out as U+FFFD, as
    /// <see cref="ITokenizer.Decode"/> would show them. The decoder may be reused for a new run of ids afterwards,
    /// but the leading-space strip is not applied again.
    /// </summary>
    public string Flush() => Emit([], flush: true);

    private string Emit(ReadOnlySpan<byte> bytes, bool flush)
    {
        // The .NET UTF-8 decoder keeps an incomplete sequence between calls and replaces invalid bytes exactly as a
        // one-shot GetString over the concatenation does; each byte yields at most one char, plus up to 3 pending.
        int capacity = bytes.Length + 4;
        if (chars.Length < capacity) chars = new char[Math.Max(capacity, chars.Length * 2)];
        int written = utf8.GetChars(bytes, chars, flush);
        var text = chars.AsSpan(0, written);
        while (stripRemaining > 0 && text.Length > 0 && text[0] == ' ')
        {
            text = text[1..];
            stripRemaining--;
        }
        if (text.Length > 0) stripRemaining = 0;
        return text.Length == 0 ? string.Empty : new string(text);
    }
}
