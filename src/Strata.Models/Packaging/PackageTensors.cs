using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>One weight of the model and the tensors a package file stores it as.</summary>
/// <param name="Weight">The Hugging Face weight (name and [out, in] shape).</param>
/// <param name="SourceName">The checkpoint tensor it is made from (the embedding for a tied, quantized head).</param>
/// <param name="Stored">The stored tensors: the weight itself in the package dtype, or its quantized parts.</param>
/// <param name="Quant">The package's quantization when this weight is stored quantized, else null.</param>
internal sealed record PackedWeight(ExpectedTensor Weight, string SourceName, IReadOnlyList<StoredTensor> Stored, QuantizationScheme? Quant)
{
    /// <summary>Stored bytes.</summary>
    public long Bytes => Stored.Sum(s => s.Shape.Aggregate(1L, (a, b) => a * b) * s.DType.Size());
}

/// <summary>Which tensors each package file holds, for a package's dtype and quantization.</summary>
internal static class PackageTensors
{
    /// <summary>The embedding file's weights.</summary>
    public static IReadOnlyList<PackedWeight> Embedding(LlamaConfig c, TensorDType dtype) =>
        LlamaTensors.Expected(c).Where(t => t.Name == LlamaTensors.Embed).Select(t => Plain(t, dtype)).ToList();

    /// <summary>Layer <paramref name="layer"/>'s weights.</summary>
    public static IReadOnlyList<PackedWeight> Layer(LlamaConfig c, TensorDType dtype, QuantizationScheme? q, int layer) =>
        LlamaTensors.Expected(c).Where(t => t.Layer == layer).Select(t => Pack(t, t.Name, dtype, q)).ToList();

    /// <summary>The head file's weights: the final norm, and the LM head when untied or quantized.</summary>
    public static IReadOnlyList<PackedWeight> Head(LlamaConfig c, TensorDType dtype, QuantizationScheme? q)
    {
        var result = LlamaTensors.Expected(c).Where(t => t.Name is LlamaTensors.FinalNorm or LlamaTensors.LmHead)
            .Select(t => Pack(t, t.Name, dtype, q)).ToList();
        if (c.TieWordEmbeddings && q is { QuantizedHead: true })
            result.Add(Pack(new ExpectedTensor(LlamaTensors.LmHead, [c.VocabSize, c.HiddenSize], -1), LlamaTensors.Embed, dtype, q));
        return result;
    }

    /// <summary>Whether a stage with the head needs the embedding file (a tied head that is not stored separately).</summary>
    public static bool HeadNeedsEmbedding(LlamaConfig c, QuantizationScheme? q) => c.TieWordEmbeddings && q is not { QuantizedHead: true };

    private static PackedWeight Plain(ExpectedTensor t, TensorDType dtype) => new(t, t.Name, [new StoredTensor(t.Name, dtype, t.Shape)], null);

    private static PackedWeight Pack(ExpectedTensor t, string source, TensorDType dtype, QuantizationScheme? q) =>
        q is not null && q.Quantizes(t)
            ? new PackedWeight(t, source, QuantizedTensors.Stored(t.Name, t.Shape[0], t.Shape[1], q.Bits, q.BlockSize), q)
            : Plain(t, dtype);
}
