namespace Strata.Models.Tokenization;

/// <summary>
/// A tokenizer built from a Hugging Face <c>tokenizer.json</c>, covering both BPE kinds Strata serves:
/// sentencepiece-style (Llama 2: '▁' for spaces, byte fallback, one word per segment) and byte-level
/// (GPT-2, Llama 3, Qwen2: regex split, GPT-2 byte alphabet, per-word cache). The pipeline is HF's:
/// added tokens, normalizer, pre-tokenizer, BPE model, post-processor template.
/// </summary>
internal sealed class HfTokenizer : ITokenizer
{
    private readonly AddedTokenMatcher addedTokens;
    private readonly ITextNormalizer? normalizer;
    private readonly IPreTokenizer? preTokenizer;
    private readonly bool byteLevel;
    private readonly BpeModel model;
    private readonly int[] prefix;
    private readonly int[] suffix;
    private readonly TokenDecoding decoding;

    public HfTokenizer(
        AddedTokenMatcher addedTokens,
        ITextNormalizer? normalizer,
        IPreTokenizer? preTokenizer,
        bool byteLevel,
        BpeModel model,
        int[] prefix,
        int[] suffix,
        TokenDecoding decoding,
        int? bosId,
        IReadOnlyList<int> eosIds)
    {
        this.addedTokens = addedTokens;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.byteLevel = byteLevel;
        this.model = model;
        this.prefix = prefix;
        this.suffix = suffix;
        this.decoding = decoding;
        BosId = bosId;
        EosIds = eosIds;
    }

    public int VocabSize => decoding.Count;

    public int? BosId { get; }

    public IReadOnlyList<int> EosIds { get; }

    public int[] Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + prefix.Length + suffix.Length + 4);
        if (addBos) ids.AddRange(prefix);
        var words = new List<string>();
        foreach (var segment in addedTokens.Split(text))
        {
            if (segment.TokenId is int tokenId)
            {
                ids.Add(tokenId);
                continue;
            }
            // HF normalizes each segment between added tokens separately (so Prepend('▁') applies to each).
            string normalized = normalizer?.Normalize(segment.Text) ?? segment.Text;
            if (normalized.Length == 0) continue;
            words.Clear();
            if (preTokenizer is null) words.Add(normalized);
            else preTokenizer.Split(normalized, segment.Start == 0, words);
            foreach (string word in words) model.EncodeWord(byteLevel ? ByteLevelAlphabet.Encode(word) : word, ids);
        }
        if (addBos) ids.AddRange(suffix);
        return [.. ids];
    }

    public string Decode(IEnumerable<int> ids) => decoding.Decode(ids);

    public string TokenText(int id) => decoding.Piece(id);

    public StreamingDecoder CreateStreamingDecoder() => decoding.CreateStreamingDecoder();
}
