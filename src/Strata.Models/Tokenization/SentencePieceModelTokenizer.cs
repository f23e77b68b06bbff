using Microsoft.ML.Tokenizers;

namespace Strata.Models.Tokenization;

/// <summary>
/// A tokenizer for a model folder that ships only sentencepiece's <c>tokenizer.model</c> (no tokenizer.json).
/// Encoding is Microsoft.ML.Tokenizers' <see cref="LlamaTokenizer"/>, which reads the ModelProto faithfully;
/// decoding is Strata's byte table so that streaming behaves as for tokenizer.json models. Two deviations from the
/// library are fixed here: the empty prompt encodes to [BOS] (the library gives []), and <c>add_bos_token</c>
/// from tokenizer_config.json is honoured. Unlike the tokenizer.json path, special-token text in the prompt
/// (e.g. "&lt;s&gt;") is encoded as plain text, which is what sentencepiece itself does.
/// </summary>
internal sealed class SentencePieceModelTokenizer : ITokenizer
{
    private readonly LlamaTokenizer inner;
    private readonly TokenDecoding decoding;
    private readonly bool addBosDefault;
    private readonly bool addEosDefault;

    private SentencePieceModelTokenizer(LlamaTokenizer inner, TokenDecoding decoding, bool addBos, bool addEos, IReadOnlyList<int> eosIds)
    {
        this.inner = inner;
        this.decoding = decoding;
        addBosDefault = addBos;
        addEosDefault = addEos;
        EosIds = eosIds;
    }

    public static SentencePieceModelTokenizer Load(string path, SpecialTokenSettings settings)
    {
        LlamaTokenizer inner;
        FileStream file;
        try
        {
            file = File.OpenRead(path);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw TokenizerJson.Unreadable(path, ex);
        }
        using (var stream = file)
        {
            try
            {
                inner = LlamaTokenizer.Create(stream, addBeginOfSentence: true, addEndOfSentence: false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Protobuf reports a malformed ModelProto as an IOException subtype; any failure here is a bad file.
                throw new ModelFormatException(path, null, $"not a readable sentencepiece model: {ex.Message}", ex);
            }
        }
        var vocabulary = inner.Vocabulary;
        CheckBytePieces(path, inner);
        var pieces = new string?[vocabulary.Values.DefaultIfEmpty(-1).Max() + 1];
        foreach (var (piece, id) in vocabulary) pieces[id] = piece;
        // The library takes these ids from the trainer spec as they are, and puts BOS and EOS into every prompt.
        foreach (var (field, id) in new[] { ("bos_id", inner.BeginningOfSentenceId), ("eos_id", inner.EndOfSentenceId), ("unk_id", inner.UnknownId) })
            if ((uint)id >= (uint)pieces.Length || pieces[id] is null)
                throw new ModelFormatException(path, "trainer_spec." + field, $"{id} is not the id of a piece (the vocabulary has {pieces.Length} ids)");
        var special = new HashSet<int> { inner.BeginningOfSentenceId, inner.EndOfSentenceId, inner.UnknownId };
        var decoding = TokenDecoding.SentencePiece(pieces, special, replaceMeta: true, inner.ByteFallback,
            inner.AddDummyPrefix ? 1 : 0);
        int? IdOf(string token) => vocabulary.TryGetValue(token, out int id) ? id : null;
        var stops = settings.ResolveStopIds(IdOf);
        settings.CheckIds(Path.GetDirectoryName(path)!, null, stops, pieces.Length);
        return new SentencePieceModelTokenizer(inner, decoding, settings.AddBos ?? true, settings.AddEos ?? false,
            stops.Count > 0 ? stops : [inner.EndOfSentenceId]);
    }

    // With byte fallback the library encodes byte b as id("<0x00>") + b without looking the piece up: the 256 byte
    // pieces must be consecutive, as sentencepiece's trainer writes them, or a prompt gets ids of other pieces or
    // outside the vocabulary.
    private static void CheckBytePieces(string path, LlamaTokenizer inner)
    {
        if (!inner.ByteFallback) return;
        var vocabulary = inner.Vocabulary;
        if (!vocabulary.TryGetValue("<0x00>", out int first))
            throw new ModelFormatException(path, "trainer_spec.byte_fallback", "byte fallback is on but there is no byte piece <0x00>");
        for (int b = 1; b < 256; b++)
        {
            string piece = $"<0x{b:X2}>";
            if (!vocabulary.TryGetValue(piece, out int id) || id != first + b)
                throw new ModelFormatException(path, "pieces",
                    $"byte fallback needs the byte pieces <0x00> to <0xFF> at 256 consecutive ids from {first}; {piece} is {(vocabulary.ContainsKey(piece) ? $"at id {id}" : "missing")}");
        }
    }

    public int VocabSize => decoding.Count;

    public int? BosId => inner.BeginningOfSentenceId;

    public IReadOnlyList<int> EosIds { get; }

    public int[] Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        bool bos = addBos && addBosDefault;
        bool eos = addBos && addEosDefault;
        if (text.Length == 0)
            return [.. (bos ? new[] { inner.BeginningOfSentenceId } : []), .. (eos ? new[] { inner.EndOfSentenceId } : [])];
        return [.. inner.EncodeToIds(text, bos, eos)];
    }

    public string Decode(IEnumerable<int> ids) => decoding.Decode(ids);

    public string TokenText(int id) => decoding.Piece(id);

    public StreamingDecoder CreateStreamingDecoder() => decoding.CreateStreamingDecoder();
}
