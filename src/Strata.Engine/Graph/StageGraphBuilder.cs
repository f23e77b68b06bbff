using Onnx;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Engine.Graph;

/// <summary>
/// Writes the ONNX graph of one pipeline stage with ONNX Runtime's fused operators:
/// <c>SimplifiedLayerNormalization</c> / <c>SkipSimplifiedLayerNormalization</c> for RMSNorm (the skip variant also
/// yields the residual sum), a packed q/k/v <c>MatMul</c> feeding <c>GroupQueryAttention</c> with rotary embedding
/// inside, and a SwiGLU MLP.
/// </summary>
/// <remarks>
/// Graph interface (B = batch rows, S = new tokens per row, H = hidden, M = KV capacity in positions):
/// <list type="bullet">
/// <item>inputs: <c>input_ids</c> int64 [B,S] (first stage) or <c>hidden_in</c> [B,S,H]; <c>seqlens_k</c> int32 [B]
/// (total length - 1 per row); <c>total_sequence_length</c> int32 scalar; <c>past_key.{i}</c>/<c>past_value.{i}</c>
/// [B,Nkv,M,D] per layer i.</item>
/// <item>outputs: <c>hidden_out</c> [B,S,H] (residual stream after the stage's last layer) or, on the last stage,
/// <c>logits</c> float32 [B,1,V] for each row's last position; <c>present_key.{i}</c>/<c>present_value.{i}</c>, which
/// the runtime binds to the same buffers as the past inputs (GroupQueryAttention writes new positions in place).</item>
/// </list>
/// </remarks>
public static partial class StageGraphBuilder
{
    /// <summary>Name of the token-id input of the first stage.</summary>
    public const string InputIds = "input_ids";
    /// <summary>Name of the hidden-state input of later stages.</summary>
    public const string HiddenIn = "hidden_in";
    /// <summary>Name of the hidden-state output of non-final stages.</summary>
    public const string HiddenOut = "hidden_out";
    /// <summary>Name of the logits output of the final stage.</summary>
    public const string Logits = "logits";
    /// <summary>Per-row total length minus one.</summary>
    public const string SeqLensK = "seqlens_k";
    /// <summary>Scalar: the longest total length in the batch.</summary>
    public const string TotalSequenceLength = "total_sequence_length";

    /// <summary>Name of the past-key input of global layer <paramref name="layer"/>.</summary>
    public static string PastKey(int layer) => $"past_key.{layer}";
    /// <summary>Name of the past-value input of global layer <paramref name="layer"/>.</summary>
    public static string PastValue(int layer) => $"past_value.{layer}";
    /// <summary>Name of the present-key output of global layer <paramref name="layer"/>.</summary>
    public static string PresentKey(int layer) => $"present_key.{layer}";
    /// <summary>Name of the present-value output of global layer <paramref name="layer"/>.</summary>
    public static string PresentValue(int layer) => $"present_value.{layer}";

    /// <summary>
    /// Head width of the attention graph and of the KV buffers. ONNX Runtime's GroupQueryAttention needs a multiple of
    /// 16, so smaller or odd-sized heads (stories260K has 8) are zero-padded: q/k keep their rotate_half pairs
    /// (i, i + d/2) at (i, i + dp/2), v and o_proj keep their first d dims, and the padded dims contribute nothing.
    /// </summary>
    public static int AttentionHeadDim(LlamaConfig config) => (config.HeadDim + 15) / 16 * 16;

    /// <summary>Writes the ONNX model of <paramref name="stage"/> into <paramref name="directory"/> as
    /// <c>stage.onnx</c> plus its weights in <c>stage.weights</c> (external data, streamed tensor by tensor): no size
    /// limit, and no copy of the stage's weights held in managed memory. Returns the model file's path.</summary>
    /// <param name="config">Model shape.</param>
    /// <param name="tensors">Weights (Hugging Face names); only the stage's tensors are read.</param>
    /// <param name="stage">The layer range.</param>
    /// <param name="maxContext">Positions the KV buffers hold; sizes the rotary caches.</param>
    /// <param name="compute">Element type of weights, activations and KV.</param>
    /// <param name="directory">Where to write the two files (created if missing).</param>
    /// <param name="quantizedAccuracyLevel">MatMulNBits' accuracy_level for quantized weights (0 to 4).</param>
    /// <param name="kv">Element type of the KV cache, default <paramref name="compute"/>. An fp16 cache under fp32
    /// compute halves the KV memory: each layer casts the new tokens' q/k/v to fp16, attends in fp16 against the
    /// cache, and casts the result back.</param>
    public static string Write(LlamaConfig config, ITensorSource tensors, StageSpec stage, int maxContext, ComputeType compute, string directory,
        int quantizedAccuracyLevel = DefaultQuantizedAccuracyLevel, ComputeType? kv = null)
    {
        Directory.CreateDirectory(directory);
        const string weightsFile = "stage.weights";
        string modelPath = Path.Combine(directory, "stage.onnx");
        using (var data = new FileStream(Path.Combine(directory, weightsFile), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var g = new OnnxGraph(compute, data, weightsFile) { QuantizedAccuracyLevel = quantizedAccuracyLevel, Kv = kv ?? compute };
            Build(g, config, tensors, stage, maxContext);
            using var model = new FileStream(modelPath, FileMode.Create, FileAccess.Write);
            g.WriteTo(model);
        }
        return modelPath;
    }

    private static void Build(OnnxGraph g, LlamaConfig config, ITensorSource tensors, StageSpec stage, int maxContext)
    {
        stage.Validate();
        if (stage.TotalLayers != config.NumLayers)
            throw new ArgumentException($"stage is planned for {stage.TotalLayers} layers but the model has {config.NumLayers}", nameof(stage));
        if (maxContext < 1) throw new ArgumentOutOfRangeException(nameof(maxContext), "max context must be positive");

        var w = new WeightReader(tensors);
        int h = config.HiddenSize, d = AttentionHeadDim(config), nkv = config.NumKvHeads;
        int el = g.ComputeElement;
        const int i32 = (int)TensorProto.Types.DataType.Int32, i64 = (int)TensorProto.Types.DataType.Int64;

        string x;
        if (stage.IsFirst)
        {
            g.Input(InputIds, i64, "batch", "seq");
            g.Weight("embed", w.Read(LlamaTensors.Embed), config.VocabSize, h);
            g.Node("Gather", ["embed", InputIds], ["embedded"]);
            x = "embedded";
        }
        else
        {
            g.Input(HiddenIn, el, "batch", "seq", h);
            x = HiddenIn;
        }
        g.Input(SeqLensK, i32, "batch");
        g.Input(TotalSequenceLength, i32);
        AddRotaryCaches(g, config, maxContext);

        string? pendingMlp = null; // output of the previous layer's MLP, not yet added to the residual
        for (int layer = stage.FirstLayer; layer < stage.EndLayer; layer++)
        {
            g.Input(PastKey(layer), g.KvElement, "batch", nkv, "max_seq", d);
            g.Input(PastValue(layer), g.KvElement, "batch", nkv, "max_seq", d);
            g.Output(PresentKey(layer), g.KvElement, "batch", nkv, "max_seq", d);
            g.Output(PresentValue(layer), g.KvElement, "batch", nkv, "max_seq", d);
            (x, pendingMlp) = AddLayer(g, w, config, layer, x, pendingMlp);
        }

        // x is the residual before the last MLP; pendingMlp the last MLP output.
        g.Node("Add", [x, pendingMlp!], ["residual_out"]);
        if (!stage.IsLast)
        {
            g.Node("Identity", ["residual_out"], [HiddenOut]);
            g.Output(HiddenOut, el, "batch", "seq", h);
        }
        else
        {
            AddHead(g, w, config);
        }
    }

    private static (string Residual, string Mlp) AddLayer(OnnxGraph g, WeightReader w, LlamaConfig c, int i, string x, string? pendingMlp)
    {
        var heads = new HeadPadding(c.HeadDim, AttentionHeadDim(c));
        int h = c.HiddenSize, q = c.NumHeads * heads.Padded, kv = c.NumKvHeads * heads.Padded, f = c.IntermediateSize;
        string p = $"l{i}.";
        float eps = (float)c.RmsNormEps;

        // Input RMSNorm; from the second layer of a stage on, fused with the previous residual add.
        g.Weight(p + "in_norm", w.Read(LlamaTensors.InputNorm(i)), h);
        string residual;
        if (pendingMlp is null)
        {
            g.Node("SimplifiedLayerNormalization", [x, p + "in_norm"], [p + "normed"], "",
                ("axis", -1L), ("epsilon", eps), ("stash_type", 1L));
            residual = x;
        }
        else
        {
            residual = p + "residual";
            g.Node("SkipSimplifiedLayerNormalization", [pendingMlp, x, p + "in_norm"], [p + "normed", "", "", residual],
                "com.microsoft", ("epsilon", eps));
        }

        // Packed q/k/v projection: [H, q + 2 kv].
        if (ReadQkvQuantized(w, c, i) is { } qkvQuantized)
        {
            Linear(g, p + "qkv_w", p + "normed", p + "qkv", QuantizedMatrix.ConcatRows(
                heads.RotaryRows(qkvQuantized.Q), heads.RotaryRows(qkvQuantized.K), heads.PlainRows(qkvQuantized.V)));
        }
        else
        {
            var qkv = WeightReader.Transpose(WeightReader.Concat(
                heads.RotaryRows(w.Read(LlamaTensors.Attn(i, 'q')), h),
                heads.RotaryRows(w.Read(LlamaTensors.Attn(i, 'k')), h),
                heads.PlainRows(w.Read(LlamaTensors.Attn(i, 'v')), h)), q + 2 * kv, h);
            g.Weight(p + "qkv_w", qkv, h, q + 2 * kv);
            g.Node("MatMul", [p + "normed", p + "qkv_w"], [p + "qkv"]);
        }
        string qkvOut = p + "qkv";
        if (c.AttentionBias)
        {
            var bias = WeightReader.Concat(
                heads.RotaryRows(w.Read(LlamaTensors.AttnBias(i, 'q')), 1),
                heads.RotaryRows(w.Read(LlamaTensors.AttnBias(i, 'k')), 1),
                heads.PlainRows(w.Read(LlamaTensors.AttnBias(i, 'v')), 1));
            g.Weight(p + "qkv_b", bias, q + 2 * kv);
            g.Node("Add", [p + "qkv", p + "qkv_b"], [p + "qkv_biased"]);
            qkvOut = p + "qkv_biased";
        }

        string attention = p + "attn";
        if (g.KvDiffers)
        {
            // Attention runs in the cache's type: only the new tokens' q/k/v and the result are cast.
            g.Node("Cast", [qkvOut], [p + "qkv_kv"], "", ("to", (long)g.KvElement));
            qkvOut = p + "qkv_kv";
            attention = p + "attn_kv";
        }
        g.Node("GroupQueryAttention",
            [qkvOut, "", "", PastKey(i), PastValue(i), SeqLensK, TotalSequenceLength, "cos_cache", "sin_cache"],
            [attention, PresentKey(i), PresentValue(i)], "com.microsoft",
            ("num_heads", (long)c.NumHeads), ("kv_num_heads", (long)c.NumKvHeads),
            ("do_rotary", 1L), ("rotary_interleaved", 0L), ("scale", (float)(1.0 / Math.Sqrt(c.HeadDim))));
        if (g.KvDiffers) g.Node("Cast", [attention], [p + "attn"], "", ("to", (long)g.ComputeElement));

        if (w.ReadQuantized(LlamaTensors.Attn(i, 'o'), h, c.NumHeads * c.HeadDim) is { } oQuantized)
        {
            Linear(g, p + "o_w", UnpadHeads(g, c, heads, p + "attn", p), p + "attn_out", oQuantized);
        }
        else
        {
            // o_proj [h, Nq*d] -> padded input columns -> transposed [Nq*dp, h].
            var oPadded = heads.PlainRows(WeightReader.Transpose(w.Read(LlamaTensors.Attn(i, 'o')), h, c.NumHeads * c.HeadDim), h);
            g.Weight(p + "o_w", oPadded, q, h);
            g.Node("MatMul", [p + "attn", p + "o_w"], [p + "attn_out"]);
        }

        // Post-attention RMSNorm fused with the attention residual add.
        g.Weight(p + "post_norm", w.Read(LlamaTensors.PostAttentionNorm(i)), h);
        g.Node("SkipSimplifiedLayerNormalization", [p + "attn_out", residual, p + "post_norm"],
            [p + "normed2", "", "", p + "residual2"], "com.microsoft", ("epsilon", eps));

        // SwiGLU: down(silu(gate x) * up x).
        Projection(g, w, p + "gate_w", LlamaTensors.Mlp(i, "gate"), f, h, p + "normed2", p + "gate");
        Projection(g, w, p + "up_w", LlamaTensors.Mlp(i, "up"), f, h, p + "normed2", p + "up");
        g.Node("Sigmoid", [p + "gate"], [p + "gate_sig"]);
        g.Node("Mul", [p + "gate", p + "gate_sig"], [p + "silu"]);
        g.Node("Mul", [p + "silu", p + "up"], [p + "swiglu"]);
        Projection(g, w, p + "down_w", LlamaTensors.Mlp(i, "down"), h, f, p + "swiglu", p + "mlp");
        return (p + "residual2", p + "mlp");
    }

    private static void AddHead(OnnxGraph g, WeightReader w, LlamaConfig c)
    {
        int h = c.HiddenSize;
        // Only each row's last position needs logits: slice before the norm and the (large) LM head.
        g.Int64s("last_start", -1);
        g.Int64s("last_end", long.MaxValue);
        g.Int64s("seq_axis", 1);
        g.Node("Slice", ["residual_out", "last_start", "last_end", "seq_axis"], ["last_hidden"]);
        g.Weight("final_norm", w.Read(LlamaTensors.FinalNorm), h);
        g.Node("SimplifiedLayerNormalization", ["last_hidden", "final_norm"], ["final_normed"], "",
            ("axis", -1L), ("epsilon", (float)c.RmsNormEps), ("stash_type", 1L));
        string logits = g.Compute == ComputeType.Float16 ? "logits_half" : Logits;
        if (w.ReadQuantized(LlamaTensors.LmHead, c.VocabSize, h) is { } headQuantized)
        {
            Linear(g, "lm_head", "final_normed", logits, headQuantized);
        }
        else
        {
            string head = c.TieWordEmbeddings ? LlamaTensors.Embed : LlamaTensors.LmHead;
            g.Weight("lm_head", w.ReadTransposed(head, c.VocabSize, h), h, c.VocabSize);
            g.Node("MatMul", ["final_normed", "lm_head"], [logits]);
        }
        if (g.Compute == ComputeType.Float16)
            g.Node("Cast", ["logits_half"], [Logits], "", ("to", (long)TensorProto.Types.DataType.Float));
        g.Output(Logits, (int)TensorProto.Types.DataType.Float, "batch", 1, c.VocabSize);
    }

    /// <summary>cos/sin caches [maxContext, D/2] with the model's (possibly Llama-3 scaled) inverse frequencies.</summary>
    private static void AddRotaryCaches(OnnxGraph g, LlamaConfig c, int maxContext)
    {
        var inv = RopeScaling.InverseFrequencies(c.HeadDim, c.RopeTheta, c.RopeScaling);
        int half = AttentionHeadDim(c) / 2; // padded pairs beyond inv.Length rotate by 0: cos 1, sin 0
        var cos = new float[maxContext * half];
        var sin = new float[maxContext * half];
        for (int pos = 0; pos < maxContext; pos++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = i < inv.Length ? pos * inv[i] : 0;
                cos[pos * half + i] = (float)Math.Cos(angle);
                sin[pos * half + i] = (float)Math.Sin(angle);
            }
        }
        g.Weight("cos_cache", cos, g.Kv, maxContext, half); // attention's inputs, in its type
        g.Weight("sin_cache", sin, g.Kv, maxContext, half);
    }
}
