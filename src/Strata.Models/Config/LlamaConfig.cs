using System.Text.Json;
using System.Text.Json.Nodes;

namespace Strata.Models.Config;

/// <summary>
/// The shape of a Llama-family decoder (Llama, Mistral, Qwen2), read from a Hugging Face <c>config.json</c>.
/// Every supported variation is a field here; the engine and the reference forward pass read nothing else.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Architectures Strata can run.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures =
        ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

    /// <summary>The Hugging Face architecture name, e.g. <c>LlamaForCausalLM</c>.</summary>
    public required string Architecture { get; init; }
    /// <summary>Model width (d_model).</summary>
    public required int HiddenSize { get; init; }
    /// <summary>SwiGLU inner width.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (equal to <see cref="NumHeads"/> for multi-head attention).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Width of one head (explicit <c>head_dim</c>, else hidden/heads).</summary>
    public required int HeadDim { get; init; }
    /// <summary>Vocabulary size (rows of the embedding).</summary>
    public required int VocabSize { get; init; }
    /// <summary>Longest context the model was configured for.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary>RoPE base.</summary>
    public required double RopeTheta { get; init; }
    /// <summary>Llama-3 RoPE scaling, or null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>Whether q/k/v projections carry a bias (Qwen2 always; Llama when <c>attention_bias</c>).</summary>
    public required bool AttentionBias { get; init; }
    /// <summary>Whether the LM head reuses the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Beginning-of-sequence id, if the config names one.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>End-of-sequence ids from config.json (an int or a list).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>The checkpoint's stated dtype (<c>torch_dtype</c> / <c>dtype</c>), informational.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Query heads sharing one KV head.</summary>
    public int GroupSize => NumHeads / NumKvHeads;

    /// <summary>Reads and validates <c>config.json</c> in <paramref name="modelDir"/>.</summary>
    public static LlamaConfig Load(string modelDir)
    {
        string path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, "file not found (a Hugging Face model folder needs config.json)");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates config JSON; <paramref name="where"/> names the file in errors.</summary>
    public static LlamaConfig Parse(string json, string where)
    {
        try
        {
            // Duplicate names are refused while parsing; JsonObject would otherwise throw ArgumentException on first use.
            var root = JsonNode.Parse(json, null, new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                       ?? throw new ModelFormatException(where, null, "expected a JSON object");
            return Read(new JsonFields(root, where), where);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(where, null, $"invalid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json decodes strings lazily: a lone surrogate escape fails when the name or value is first read.
            throw new ModelFormatException(where, null, $"holds a string that is not valid Unicode: {e.Message}", e);
        }
    }

    private static LlamaConfig Read(JsonFields r, string where)
    {
        string arch = r.Architecture();
        int hidden = r.PositiveInt("hidden_size");
        int heads = r.PositiveInt("num_attention_heads");
        int kvHeads = r.OptionalPositiveInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw new ModelFormatException(where, "num_key_value_heads",
                $"{kvHeads} does not divide num_attention_heads {heads}");
        int? explicitHeadDim = r.OptionalPositiveInt("head_dim");
        if (explicitHeadDim is null && hidden % heads != 0)
            throw new ModelFormatException(where, "hidden_size", $"{hidden} is not a multiple of num_attention_heads {heads} and no head_dim is given");
        int headDim = explicitHeadDim ?? hidden / heads;
        if (headDim % 2 != 0)
            throw new ModelFormatException(where, "head_dim", $"{headDim} is odd; rotary embeddings need an even head size");

        string act = r.OptionalString("hidden_act") ?? "silu";
        if (act is not ("silu" or "swish"))
            throw new ModelFormatException(where, "hidden_act", $"'{act}' is not supported (only silu / SwiGLU)");
        if (r.OptionalBool("mlp_bias") == true)
            throw new ModelFormatException(where, "mlp_bias", "MLP biases are not supported");

        return new LlamaConfig
        {
            Architecture = arch,
            HiddenSize = hidden,
            IntermediateSize = r.PositiveInt("intermediate_size"),
            NumLayers = r.PositiveInt("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            VocabSize = r.PositiveInt("vocab_size"),
            MaxPositionEmbeddings = r.OptionalPositiveInt("max_position_embeddings") ?? 2048,
            RmsNormEps = r.OptionalDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = r.OptionalDouble("rope_theta") ?? 10000.0,
            RopeScaling = r.RopeScaling(),
            AttentionBias = arch == "Qwen2ForCausalLM" || r.OptionalBool("attention_bias") == true,
            TieWordEmbeddings = r.OptionalBool("tie_word_embeddings") ?? false,
            BosTokenId = r.OptionalInt("bos_token_id"),
            EosTokenIds = r.IntOrList("eos_token_id"),
            TorchDtype = r.OptionalString("torch_dtype") ?? r.OptionalString("dtype"),
        };
    }

    /// <summary>Writes this shape as a Hugging Face config.json object.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture),
            ["model_type"] = Architecture switch
            {
                "MistralForCausalLM" => "mistral",
                "Qwen2ForCausalLM" => "qwen2",
                _ => "llama",
            },
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumLayers,
            ["num_attention_heads"] = NumHeads,
            ["num_key_value_heads"] = NumKvHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = VocabSize,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["attention_bias"] = AttentionBias,
            ["tie_word_embeddings"] = TieWordEmbeddings,
        };
        o["rope_scaling"] = RopeScaling is null ? null : new JsonObject
        {
            ["rope_type"] = "llama3",
            ["factor"] = RopeScaling.Factor,
            ["low_freq_factor"] = RopeScaling.LowFreqFactor,
            ["high_freq_factor"] = RopeScaling.HighFreqFactor,
            ["original_max_position_embeddings"] = RopeScaling.OriginalMaxPositionEmbeddings,
        };
        if (BosTokenId is int bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(i => (JsonNode)i).ToArray());
        if (TorchDtype is not null) o["torch_dtype"] = TorchDtype;
        return o;
    }
}
