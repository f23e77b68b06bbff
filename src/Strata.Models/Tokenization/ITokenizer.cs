namespace Strata.Models.Tokenization;

/// <summary>
/// A model's tokenizer: text to ids for prompts, ids to text for generated output. Implementations are immutable
/// apart from internal caches and are safe to share between threads and requests.
/// Load one with <see cref="TokenizerLoader.Load"/>.
/// </summary>
public interface ITokenizer
{
    /// <summary>One more than the largest token id (vocabulary plus added tokens).</summary>
    int VocabSize { get; }

    /// <summary>The beginning-of-sequence id, or null when the model names none (e.g. Qwen2).</summary>
    int? BosId { get; }

    /// <summary>
    /// Ids that end generation: <c>generation_config.json</c>'s <c>eos_token_id</c> (an int or a list) when present,
    /// else <c>config.json</c>'s, else the tokenizer's EOS token. Stories260K: [2, 1].
    /// </summary>
    IReadOnlyList<int> EosIds { get; }

    /// <summary>
    /// Encodes <paramref name="text"/>. Added tokens written in the text (e.g. <c>&lt;|eot_id|&gt;</c> from a chat
    /// template) are matched as whole tokens, as Hugging Face does.
    /// </summary>
    /// <param name="text">The prompt; the empty string encodes to the special prefix alone (<c>[BOS]</c>).</param>
    /// <param name="addBos">
    /// Whether to add the special tokens the model adds around a single sequence (its post-processor as adjusted by
    /// <c>add_bos_token</c>/<c>add_eos_token</c>): normally just BOS in front. Models without BOS get nothing.
    /// </param>
    int[] Encode(string text, bool addBos = true);

    /// <summary>
    /// Decodes generated ids: special tokens (e.g. <c>&lt;s&gt;</c>) are skipped, ids outside the vocabulary are
    /// ignored, byte tokens are joined into UTF-8 (invalid sequences become U+FFFD), and for sentencepiece models
    /// one leading space of the whole output is removed.
    /// </summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>The raw vocabulary piece of <paramref name="id"/> (e.g. <c>▁the</c>, <c>&lt;0x0A&gt;</c>), for debugging.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    string TokenText(int id);

    /// <summary>A decoder for one generated sequence whose pieces of text concatenate to <see cref="Decode"/>.</summary>
    StreamingDecoder CreateStreamingDecoder();
}
