using Strata.Models.Config;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// Typed reads of a GGUF file's metadata, and the model shape it describes (<c>llama.*</c> / <c>qwen2.*</c> keys)
/// as a <see cref="LlamaConfig"/>. A missing or mistyped key is a <see cref="ModelFormatException"/> naming it.
/// </summary>
public sealed class GgufMetadata(GgufFile file)
{
    /// <summary>The GGUF architectures Strata imports, and the Hugging Face architecture each becomes.</summary>
    public static readonly IReadOnlyDictionary<string, string> Architectures = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["llama"] = "LlamaForCausalLM",
        ["qwen2"] = "Qwen2ForCausalLM",
    };

    /// <summary>The file read.</summary>
    public GgufFile File { get; } = file;

    /// <summary><c>general.architecture</c>, checked to be one Strata imports.</summary>
    public string Architecture
    {
        get
        {
            string arch = String("general.architecture");
            if (!Architectures.ContainsKey(arch))
                throw Error("general.architecture", $"architecture '{arch}' is not supported (supported: {string.Join(", ", Architectures.Keys)})");
            return arch;
        }
    }

    /// <summary>Whether the key is present.</summary>
    public bool Has(string key) => File.Metadata.ContainsKey(key);

    /// <summary>A required string.</summary>
    public string String(string key) => OptionalString(key) ?? throw Error(key, "required key is missing");

    /// <summary>An optional string.</summary>
    public string? OptionalString(string key) => Get(key) switch
    {
        null => null,
        { Value: string s } => s,
        var v => throw Error(key, $"expected a string, got {v.TypeName}"),
    };

    /// <summary>A required positive integer that fits an int.</summary>
    public int PositiveInt(string key) => OptionalPositiveInt(key) ?? throw Error(key, "required key is missing");

    /// <summary>An optional positive integer that fits an int.</summary>
    public int? OptionalPositiveInt(string key)
    {
        if (Get(key) is not { } v) return null;
        if (v.Type == GgufValueType.Array) throw Error(key, "per-layer values (an array) are not supported");
        long n = v.AsInteger() ?? throw Error(key, $"expected an integer, got {v.TypeName}");
        if (n is < 1 or > int.MaxValue) throw Error(key, $"{n} is out of range (1 to {int.MaxValue})");
        return (int)n;
    }

    /// <summary>An optional non-negative integer (a token id).</summary>
    public int? OptionalId(string key)
    {
        if (Get(key) is not { } v) return null;
        long n = v.AsInteger() ?? throw Error(key, $"expected an integer, got {v.TypeName}");
        if (n is < 0 or > int.MaxValue) throw Error(key, $"{n} is out of range");
        return (int)n;
    }

    /// <summary>An optional finite positive number.</summary>
    public double? OptionalPositive(string key)
    {
        if (Get(key) is not { } v) return null;
        double x = v.AsNumber() ?? throw Error(key, $"expected a number, got {v.TypeName}");
        if (!double.IsFinite(x) || x <= 0) throw Error(key, $"{x} is not a positive number");
        return x;
    }

    /// <summary>An optional bool.</summary>
    public bool? OptionalBool(string key) => Get(key) switch
    {
        null => null,
        { Value: bool b } => b,
        var v => throw Error(key, $"expected a bool, got {v.TypeName}"),
    };

    /// <summary>An optional array of <typeparamref name="T"/> (e.g. <c>string[]</c> for <c>tokenizer.ggml.tokens</c>).</summary>
    public T[]? OptionalArray<T>(string key) => Get(key) switch
    {
        null => null,
        { Type: GgufValueType.Array, Value: T[] a } => a,
        var v => throw Error(key, $"expected an array of {typeof(T).Name}, got {v.TypeName}"),
    };

    /// <summary>An optional integer array (any integer element type) as ints.</summary>
    public int[]? OptionalIntArray(string key)
    {
        if (Get(key) is not { } v) return null;
        if (v is not { Type: GgufValueType.Array, Value: Array a } || v.ElementType is GgufValueType.String or GgufValueType.Array
            or GgufValueType.Float32 or GgufValueType.Float64 or GgufValueType.Bool)
            throw Error(key, $"expected an array of integers, got {v.TypeName}");
        var result = new int[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            long n = GgufValue.Of(v.ElementType, a.GetValue(i)!).AsInteger() ?? throw Error(key, $"element {i} is out of range");
            result[i] = n is >= int.MinValue and <= int.MaxValue ? (int)n : throw Error(key, $"element {i} ({n}) is out of range");
        }
        return result;
    }

    /// <summary>An optional float array (float32 or float64 elements) as floats.</summary>
    public float[]? OptionalFloatArray(string key) => Get(key) switch
    {
        null => null,
        { Type: GgufValueType.Array, Value: float[] f } => f,
        { Type: GgufValueType.Array, Value: double[] d } => d.Select(x => (float)x).ToArray(),
        var v => throw Error(key, $"expected an array of numbers, got {v.TypeName}"),
    };

    private GgufValue? Get(string key) => File.Metadata.TryGetValue(key, out var v) ? v : null;

    /// <summary>A format error at <paramref name="key"/>.</summary>
    public ModelFormatException Error(string key, string problem) => new(File.Path, key, problem);

    /// <summary>
    /// The model shape: width, layers, heads, FFN width, RoPE base, RMSNorm epsilon and context from the
    /// architecture's keys, the vocabulary from <c>tokenizer.ggml.tokens</c> (else <c>{arch}.vocab_size</c>), and
    /// tied embeddings when the file has no <c>output.weight</c>.
    /// </summary>
    public LlamaConfig ToConfig()
    {
        string arch = Architecture;
        string p = arch + ".";
        int hidden = PositiveInt(p + "embedding_length");
        int heads = PositiveInt(p + "attention.head_count");
        int kvHeads = OptionalPositiveInt(p + "attention.head_count_kv") ?? heads;
        if (heads % kvHeads != 0)
            throw Error(p + "attention.head_count_kv", $"{kvHeads} does not divide {p}attention.head_count {heads}");
        int? keyLength = OptionalPositiveInt(p + "attention.key_length");
        int? valueLength = OptionalPositiveInt(p + "attention.value_length");
        if (keyLength is null && hidden % heads != 0)
            throw Error(p + "embedding_length", $"{hidden} is not a multiple of {p}attention.head_count {heads} and no {p}attention.key_length is given");
        int headDim = keyLength ?? hidden / heads;
        if (valueLength is int vl && vl != headDim)
            throw Error(p + "attention.value_length", $"{vl} differs from the key length {headDim}; only equal key and value heads are supported");
        if (headDim % 2 != 0) throw Error(p + "attention.key_length", $"head size {headDim} is odd; rotary embeddings need an even head size");
        if (OptionalPositiveInt(p + "rope.dimension_count") is int rot && rot != headDim)
            throw Error(p + "rope.dimension_count", $"{rot} differs from the head size {headDim}; partial rotary embeddings are not supported");
        if (OptionalString(p + "rope.scaling.type") is { } scaling && scaling != "none")
            throw Error(p + "rope.scaling.type", $"RoPE scaling '{scaling}' is not supported");
        if (File.Tensors.ContainsKey("rope_freqs.weight"))
            throw new ModelFormatException(File.Path, "rope_freqs.weight", "per-frequency RoPE factors (Llama 3.1 scaling) are not supported yet");
        string[]? tokens = OptionalArray<string>("tokenizer.ggml.tokens");
        int vocab = tokens?.Length ?? OptionalPositiveInt(p + "vocab_size")
            ?? throw Error("tokenizer.ggml.tokens", $"required key is missing (and no {p}vocab_size)");
        if (vocab == 0) throw Error("tokenizer.ggml.tokens", "the token list is empty");
        int? eos = OptionalId("tokenizer.ggml.eos_token_id");
        return new LlamaConfig
        {
            Architecture = Architectures[arch],
            HiddenSize = hidden,
            IntermediateSize = PositiveInt(p + "feed_forward_length"),
            NumLayers = PositiveInt(p + "block_count"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = vocab,
            MaxPositionEmbeddings = OptionalPositiveInt(p + "context_length") ?? 2048,
            RmsNormEps = OptionalPositive(p + "attention.layer_norm_rms_epsilon") ?? 1e-6,
            RopeTheta = OptionalPositive(p + "rope.freq_base") ?? 10000.0,
            AttentionBias = arch == "qwen2" || File.Tensors.ContainsKey("blk.0.attn_q.bias"),
            TieWordEmbeddings = !File.Tensors.ContainsKey("output.weight"),
            BosTokenId = OptionalId("tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos is int e ? [e] : [],
        };
    }
}
