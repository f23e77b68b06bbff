namespace Strata.Models.Tokenization;

/// <summary>Loads the tokenizer of a Hugging Face model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Loads <c>tokenizer.json</c> from <paramref name="modelDir"/> (or, when only that is missing, sentencepiece's
    /// <c>tokenizer.model</c>), together with BOS/EOS settings from <c>tokenizer_config.json</c>,
    /// <c>special_tokens_map.json</c> and <c>config.json</c> and stop ids from <c>generation_config.json</c>.
    /// Supported: BPE tokenizers of the sentencepiece kind with byte fallback (Llama 2, Mistral) and of the byte-level
    /// kind (GPT-2, Llama 3, Qwen2).
    /// </summary>
    /// <exception cref="ModelFormatException">
    /// A file is missing, is not valid JSON, or uses something not supported; the message names the file and field.
    /// </exception>
    public static ITokenizer Load(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        string json = Path.Combine(modelDir, "tokenizer.json");
        string model = Path.Combine(modelDir, "tokenizer.model");
        bool hasJson = File.Exists(json);
        if (!hasJson && !File.Exists(model))
            throw new ModelFormatException(json, null, "file not found (a model folder needs tokenizer.json or tokenizer.model)");
        var settings = SpecialTokenSettings.Read(modelDir);
        // tokenizer.json is preferred: it is what transformers' fast tokenizers and vLLM use, so its ids are the reference.
        return hasJson ? TokenizerJsonReader.Read(json, settings) : SentencePieceModelTokenizer.Load(model, settings);
    }
}
