using System.Text;

namespace Strata.Models.Tokenization;

/// <summary>
/// Decoding as one table: each id stands for a run of UTF-8 bytes (nothing for special tokens), the output is the
/// concatenation of those bytes read as UTF-8, minus up to <see cref="StripLeadingSpaces"/> leading spaces.
/// Both model kinds reduce to this: sentencepiece pieces with '▁' read as a space and <c>&lt;0xXX&gt;</c> as one
/// byte; byte-level pieces through GPT-2's alphabet. Working in bytes is what lets
/// <see cref="StreamingDecoder"/> agree exactly with <see cref="Decode"/>.
/// </summary>
internal sealed class TokenDecoding
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly string?[] pieces;
    private readonly byte[]?[] bytes;

    private TokenDecoding(string?[] pieces, byte[]?[] bytes, int stripLeadingSpaces)
    {
        this.pieces = pieces;
        this.bytes = bytes;
        StripLeadingSpaces = stripLeadingSpaces;
    }

    /// <summary>How many leading spaces to strip from the whole output (sentencepiece's Strip decoder: 1).</summary>
    public int StripLeadingSpaces { get; }

    /// <summary>One more than the largest id.</summary>
    public int Count => pieces.Length;

    /// <summary>
    /// Sentencepiece-style decoding (HF decoders Replace('▁', ' '), ByteFallback, Fuse, Strip).
    /// </summary>
    public static TokenDecoding SentencePiece(
        string?[] pieces, ISet<int> skipped, bool replaceMeta, bool byteFallback, int stripLeadingSpaces) =>
        Build(pieces, skipped, stripLeadingSpaces, piece =>
            byteFallback && ByteTokens.TryParse(piece, out byte b)
                ? [b]
                : Utf8.GetBytes(replaceMeta ? piece.Replace('▁', ' ') : piece));

    /// <summary>Byte-level decoding (HF ByteLevel decoder); pieces outside the alphabet decode as their UTF-8.</summary>
    public static TokenDecoding ByteLevel(string?[] pieces, ISet<int> skipped) =>
        Build(pieces, skipped, 0, piece => ByteLevelAlphabet.Decode(piece) ?? Utf8.GetBytes(piece));

    private static TokenDecoding Build(string?[] pieces, ISet<int> skipped, int strip, Func<string, byte[]> toBytes)
    {
        var bytes = new byte[]?[pieces.Length];
        for (int id = 0; id < pieces.Length; id++)
        {
            if (pieces[id] is { } p && !skipped.Contains(id)) bytes[id] = toBytes(p);
        }
        return new TokenDecoding(pieces, bytes, strip);
    }

    /// <summary>The raw piece of <paramref name="id"/>.</summary>
    public string Piece(int id) =>
        (uint)id < (uint)pieces.Length && pieces[id] is { } p
            ? p
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"not a token id of this vocabulary (size {pieces.Length})");

    /// <summary>
    /// The bytes <paramref name="id"/> contributes. Special tokens and ids outside the vocabulary (a model's
    /// embedding is often padded past the tokenizer) contribute nothing, as in HF's decode.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(int id) => (uint)id < (uint)bytes.Length ? bytes[id] : null;

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var buffer = new List<byte>();
        foreach (int id in ids) buffer.AddRange(Bytes(id));
        string text = Utf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(buffer));
        int cut = 0;
        while (cut < StripLeadingSpaces && cut < text.Length && text[cut] == ' ') cut++;
        return text[cut..];
    }

    /// <summary>A decoder producing the same text as <see cref="Decode"/>, incrementally.</summary>
    public StreamingDecoder CreateStreamingDecoder() => new(this, Utf8.GetDecoder());
}
