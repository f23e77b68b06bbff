using System.Collections.Frozen;
using System.Text;

namespace Strata.Models.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-unicode map (<c>bytes_to_unicode</c>): printable Latin-1 bytes map to themselves,
/// the other 68 bytes to U+0100.. in byte order, so every byte sequence becomes a string of visible characters
/// (space is 'Ġ', newline 'Ċ'). Byte-level BPE vocabularies are written in this alphabet.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly string ByteToChar = BuildByteToChar();
    private static readonly FrozenDictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToFrozenDictionary(b => ByteToChar[b], b => (byte)b);

    /// <summary>The visible character for one byte.</summary>
    public static char Map(byte b) => ByteToChar[b];

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each replaced by its visible character.</summary>
    public static string Encode(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
        });
    }

    /// <summary>
    /// The bytes a byte-level piece stands for; null when a character is outside the alphabet
    /// (added tokens such as <c>&lt;|endoftext|&gt;</c> are plain text; HF's decoder then uses their UTF-8).
    /// </summary>
    public static byte[]? Decode(string piece)
    {
        var bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
        {
            if (!CharToByte.TryGetValue(piece[i], out bytes[i])) return null;
        }
        return bytes;
    }

    private static string BuildByteToChar()
    {
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return new string(map);
    }
}
