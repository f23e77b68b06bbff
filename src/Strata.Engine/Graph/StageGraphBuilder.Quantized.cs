using Strata.Models;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Engine.Graph;

/// <summary>Projections of weights that a package stores quantized: ONNX Runtime's <c>com.microsoft.MatMulNBits</c>.</summary>
public static partial class StageGraphBuilder
{
    /// <summary>
    /// MatMulNBits' <c>accuracy_level</c> unless the caller chooses: 4, int8 activations (see
    /// <see cref="Runtime.EngineOptions.QuantizedAccuracyLevel"/> for what was measured). 0 computes in the activations'
    /// type, so a stage equals float matmuls with the dequantized weights up to rounding.
    /// </summary>
    public const int DefaultQuantizedAccuracyLevel = 4;

    /// <summary>
    /// One line describing how the stage's projections are computed: how many are MatMulNBits (and their bits and
    /// block size) and how many are float MatMul. For logs when a stage loads.
    /// </summary>
    public static string DescribeProjections(LlamaConfig config, ITensorSource tensors, StageSpec stage, int accuracyLevel = DefaultQuantizedAccuracyLevel)
    {
        var weights = Enumerable.Range(stage.FirstLayer, stage.LayerCount).SelectMany(QuantizationScheme.LinearWeights).ToList();
        if (stage.IsLast) weights.Add(LlamaTensors.LmHead);
        var forms = weights.Select(name => QuantizedForm(tensors, name)).ToList();
        int quantized = forms.Count(f => f is not null);
        return quantized == 0
            ? $"{weights.Count} float MatMul projections"
            : $"{quantized} of {weights.Count} projections as MatMulNBits ({string.Join(", ", forms.Where(f => f is not null).Distinct())}, " +
              $"accuracy_level {accuracyLevel}), the rest float MatMul";
    }

    private static string? QuantizedForm(ITensorSource tensors, string weight)
    {
        foreach (int bits in BlockQuantizer.SupportedBits)
            if (tensors.TryGet(QuantizedTensors.DataName(weight, bits), out var info) && info.Shape.Length == 3)
                return $"int{bits} block {info.Shape[2] * 8 / bits}";
        return null;
    }

    /// <summary>Y = X · Wᵀ for a quantized W [N, K]: MatMulNBits with B [N, K blocks, block bytes], scales [N, K blocks]
    /// (converted to the compute type) and packed zero points [N, bytes per row].</summary>
    private static void Linear(OnnxGraph g, string name, string input, string output, QuantizedMatrix m)
    {
        m.Validate();
        g.Bytes(name + ".q", m.Data, m.Rows, m.BlocksPerRow, m.BlockBytes);
        g.Weight(name + ".scales", m.Scales, m.Rows, m.BlocksPerRow);
        g.Bytes(name + ".zero_points", m.ZeroPoints, m.Rows, m.ZeroPointBytesPerRow);
        g.Node("MatMulNBits", [input, name + ".q", name + ".scales", name + ".zero_points"], [output], "com.microsoft",
            ("K", (long)m.Cols), ("N", (long)m.Rows), ("bits", (long)m.Bits), ("block_size", (long)m.BlockSize),
            ("accuracy_level", (long)g.QuantizedAccuracyLevel));
    }

    /// <summary>A projection of <paramref name="input"/> by the Hugging Face weight [rows, cols]: MatMulNBits when it is
    /// stored quantized, else MatMul by its transpose.</summary>
    private static void Projection(OnnxGraph g, WeightReader w, string node, string weight, int rows, int cols, string input, string output)
    {
        if (w.ReadQuantized(weight, rows, cols) is { } m)
        {
            Linear(g, node, input, output, m);
            return;
        }
        g.Weight(node, w.ReadTransposed(weight, rows, cols), cols, rows);
        g.Node("MatMul", [input, node], [output]);
    }

    /// <summary>q, k and v of layer <paramref name="layer"/> when all three are quantized; null when all are float.</summary>
    private static (QuantizedMatrix Q, QuantizedMatrix K, QuantizedMatrix V)? ReadQkvQuantized(WeightReader w, LlamaConfig c, int layer)
    {
        int h = c.HiddenSize, q = c.NumHeads * c.HeadDim, kv = c.NumKvHeads * c.HeadDim;
        var qm = w.ReadQuantized(LlamaTensors.Attn(layer, 'q'), q, h);
        var km = w.ReadQuantized(LlamaTensors.Attn(layer, 'k'), kv, h);
        var vm = w.ReadQuantized(LlamaTensors.Attn(layer, 'v'), kv, h);
        if (qm is null && km is null && vm is null) return null;
        if (qm is null || km is null || vm is null || qm.Bits != km.Bits || km.Bits != vm.Bits || qm.BlockSize != km.BlockSize || km.BlockSize != vm.BlockSize)
            throw new ModelFormatException($"layer {layer}", LlamaTensors.Attn(layer, 'q'),
                "q, k and v projections must be all float or all quantized with the same bits and block size (re-import the model)");
        return (qm, km, vm);
    }

    /// <summary>
    /// The attention output [B, S, Nq * d] without the zero-padded head dims (<see cref="AttentionHeadDim"/>): v's
    /// padded rows are zero, so those dims are zero, and dropping them keeps o_proj's quantized K blocks as imported
    /// instead of re-quantizing a padded matrix. Returns <paramref name="attn"/> itself when heads are not padded.
    /// </summary>
    private static string UnpadHeads(OnnxGraph g, LlamaConfig c, HeadPadding heads, string attn, string prefix)
    {
        if (heads.Original == heads.Padded) return attn;
        g.Int64s(prefix + "heads_shape", 0, 0, c.NumHeads, heads.Padded);
        g.Int64s(prefix + "head_start", 0);
        g.Int64s(prefix + "head_end", heads.Original);
        g.Int64s(prefix + "head_axis", 3);
        g.Int64s(prefix + "unpadded_shape", 0, 0, (long)c.NumHeads * heads.Original);
        g.Node("Reshape", [attn, prefix + "heads_shape"], [prefix + "attn_heads"]);
        g.Node("Slice", [prefix + "attn_heads", prefix + "head_start", prefix + "head_end", prefix + "head_axis"], [prefix + "attn_heads_unpadded"]);
        g.Node("Reshape", [prefix + "attn_heads_unpadded", prefix + "unpadded_shape"], [prefix + "attn_unpadded"]);
        return prefix + "attn_unpadded";
    }
}
