using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;
using Strata.Models.Tokenization;

namespace Strata.Models.Synthetic;

/// <summary>
/// The shape and storage of a synthetic (random-weight) Hugging Face Llama checkpoint.
/// Defaults are the "tiny" preset.
/// </summary>
public sealed record SyntheticOptions
{
    /// <summary>The names <see cref="Preset"/> accepts.</summary>
    public static readonly IReadOnlyList<string> PresetNames = ["tiny", "small", "100m"];

    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; } = 2;
    /// <summary>Model width.</summary>
    public int Hidden { get; init; } = 64;
    /// <summary>Query heads.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>Key/value heads (must divide <see cref="Heads"/>).</summary>
    public int KvHeads { get; init; } = 2;
    /// <summary>Head width; null means <see cref="Hidden"/> / <see cref="Heads"/>.</summary>
    public int? HeadDim { get; init; }
    /// <summary>SwiGLU inner width.</summary>
    public int Intermediate { get; init; } = 128;
    /// <summary>Vocabulary size (at least <see cref="SyntheticTokenizer.MinVocabSize"/>, for the tokenizer).</summary>
    public int Vocab { get; init; } = 512;
    /// <summary>max_position_embeddings.</summary>
    public int MaxPositions { get; init; } = 2048;
    /// <summary>Stored element type.</summary>
    public TensorDType DType { get; init; } = TensorDType.F32;
    /// <summary>Seed of the weights; the same seed always gives the same bytes.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Whether the LM head reuses the embedding (no <c>lm_head.weight</c>).</summary>
    public bool Tied { get; init; }
    /// <summary>Whether q/k/v projections carry biases (as Qwen2 does).</summary>
    public bool AttentionBias { get; init; }
    /// <summary>Hugging Face architecture name.</summary>
    public string Architecture { get; init; } = "LlamaForCausalLM";
    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000.0;
    /// <summary>Optional Llama-3 RoPE scaling.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public double RmsNormEps { get; init; } = 1e-5;
    /// <summary>1 writes <c>model.safetensors</c>; N &gt; 1 writes N shards plus <c>model.safetensors.index.json</c>.</summary>
    public int Shards { get; init; } = 1;

    /// <summary>A named shape: "tiny" (2 layers, hidden 64), "small" (4 layers, hidden 256) or "100m"
    /// (a ~100M-parameter tied Llama for benchmarks: 12 layers, hidden 768, vocab 32000).</summary>
    public static SyntheticOptions Preset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => new SyntheticOptions(),
        "small" => new SyntheticOptions
        {
            Layers = 4, Hidden = 256, Heads = 8, KvHeads = 4, Intermediate = 704, Vocab = 2048,
        },
        "100m" => new SyntheticOptions
        {
            Layers = 12, Hidden = 768, Heads = 12, KvHeads = 4, Intermediate = 2048, Vocab = 32000, Tied = true,
        },
        _ => throw new ArgumentException($"unknown preset '{name}'; known: {string.Join(", ", PresetNames)}", nameof(name)),
    };

    /// <summary>The config.json these options describe (bos 1, eos 2).</summary>
    public LlamaConfig ToConfig()
    {
        Validate();
        return new LlamaConfig
        {
            Architecture = Architecture,
            HiddenSize = Hidden,
            IntermediateSize = Intermediate,
            NumLayers = Layers,
            NumHeads = Heads,
            NumKvHeads = KvHeads,
            HeadDim = HeadDim ?? Hidden / Heads,
            VocabSize = Vocab,
            MaxPositionEmbeddings = MaxPositions,
            RmsNormEps = RmsNormEps,
            RopeTheta = RopeTheta,
            RopeScaling = RopeScaling,
            AttentionBias = AttentionBias || Architecture == "Qwen2ForCausalLM",
            TieWordEmbeddings = Tied,
            BosTokenId = 1,
            EosTokenIds = [2],
            TorchDtype = PackageManifest.TorchDtypeName(DType),
        };
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        Positive(Layers, nameof(Layers));
        Positive(Hidden, nameof(Hidden));
        Positive(Heads, nameof(Heads));
        Positive(KvHeads, nameof(KvHeads));
        Positive(Intermediate, nameof(Intermediate));
        Positive(Vocab, nameof(Vocab));
        Positive(MaxPositions, nameof(MaxPositions));
        Positive(Shards, nameof(Shards));
        if (Heads % KvHeads != 0) throw new ArgumentException($"{nameof(KvHeads)} {KvHeads} does not divide {nameof(Heads)} {Heads}");
        if (HeadDim is null && Hidden % Heads != 0)
            throw new ArgumentException($"{nameof(Hidden)} {Hidden} is not a multiple of {nameof(Heads)} {Heads}; set {nameof(HeadDim)}");
        int headDim = HeadDim ?? Hidden / Heads;
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"{nameof(HeadDim)} {headDim} must be positive and even (rotary)");
        if (!LlamaConfig.SupportedArchitectures.Contains(Architecture))
            throw new ArgumentException($"{nameof(Architecture)} '{Architecture}' is not supported; supported: {string.Join(", ", LlamaConfig.SupportedArchitectures)}");
        if (RopeTheta <= 0 || !double.IsFinite(RopeTheta)) throw new ArgumentException($"{nameof(RopeTheta)} must be positive");
        if (Vocab < SyntheticTokenizer.MinVocabSize)
            throw new ArgumentException($"{nameof(Vocab)} {Vocab} is below {SyntheticTokenizer.MinVocabSize}, the smallest synthetic tokenizer (special tokens + 256 bytes)");
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} must be positive, got {value}");
    }
}
