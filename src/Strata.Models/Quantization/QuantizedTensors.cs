using Strata.Models.Checkpoints;

namespace Strata.Models.Quantization;

/// <summary>One tensor as a package file stores it.</summary>
/// <param name="Name">Stored name.</param>
/// <param name="DType">Stored element type.</param>
/// <param name="Shape">Stored shape.</param>
public sealed record StoredTensor(string Name, TensorDType DType, long[] Shape);

/// <summary>
/// How a quantized weight W (a Hugging Face name such as <c>model.layers.0.mlp.down_proj.weight</c>, [N, K]) is stored
/// in safetensors: three tensors in MatMulNBits' layout, <c>W.int4</c> or <c>W.int8</c> (U8 [N, K blocks, block bytes],
/// the suffix giving the bits), <c>W.scales</c> (F32 [N, K blocks]) and <c>W.zero_points</c> (U8, packed,
/// [N, bytes of a row's zero points]). Anything that reads tensors can tell a quantized weight from a float one by name.
/// </summary>
public static class QuantizedTensors
{
    /// <summary>Name of the packed values of <paramref name="weight"/>.</summary>
    public static string DataName(string weight, int bits) => $"{weight}.int{bits}";

    /// <summary>Name of the per-block scales of <paramref name="weight"/>.</summary>
    public static string ScalesName(string weight) => weight + ".scales";

    /// <summary>Name of the packed zero points of <paramref name="weight"/>.</summary>
    public static string ZeroPointsName(string weight) => weight + ".zero_points";

    /// <summary>The three tensors that hold <paramref name="weight"/> [<paramref name="rows"/>, <paramref name="cols"/>].</summary>
    public static IReadOnlyList<StoredTensor> Stored(string weight, long rows, long cols, int bits, int blockSize)
    {
        var shape = new QuantizedMatrix((int)rows, (int)cols, bits, blockSize, [], [], []);
        return
        [
            new(DataName(weight, bits), TensorDType.U8, [rows, shape.BlocksPerRow, shape.BlockBytes]),
            new(ScalesName(weight), TensorDType.F32, [rows, shape.BlocksPerRow]),
            new(ZeroPointsName(weight), TensorDType.U8, [rows, shape.ZeroPointBytesPerRow]),
        ];
    }

    /// <summary>Whether <paramref name="source"/> holds <paramref name="weight"/> quantized.</summary>
    public static bool IsQuantized(ITensorSource source, string weight) =>
        BlockQuantizer.SupportedBits.Any(b => source.TryGet(DataName(weight, b), out _));

    /// <summary>
    /// Reads <paramref name="weight"/> [<paramref name="rows"/>, <paramref name="cols"/>] when the source holds it
    /// quantized; null when it holds no quantized form.
    /// </summary>
    /// <exception cref="ModelFormatException">The stored tensors do not describe a [rows, cols] quantized matrix.</exception>
    public static QuantizedMatrix? TryRead(ITensorSource source, string weight, int rows, int cols)
    {
        int bits = BlockQuantizer.SupportedBits.FirstOrDefault(b => source.TryGet(DataName(weight, b), out _));
        if (bits == 0) return null;
        var data = source.Get(DataName(weight, bits), weight);
        if (data.Shape.Length != 3 || data.Shape[0] != rows || data.DType != TensorDType.U8)
            throw new ModelFormatException(data.File, data.Name, $"expected U8 [{rows}, blocks, block bytes], got {data.DType.SafetensorsName()} {data.ShapeText}");
        long blockSize = data.Shape[2] * 8 / bits;
        if (!BlockQuantizer.SupportedBlockSizes.Contains((int)blockSize))
            throw new ModelFormatException(data.File, data.Name, $"{data.Shape[2]} bytes per block is not a supported int{bits} block size");
        var m = new QuantizedMatrix(rows, cols, bits, (int)blockSize, [], [], []);
        foreach (var expected in Stored(weight, rows, cols, bits, m.BlockSize))
        {
            var info = source.Get(expected.Name, weight);
            if (info.DType != expected.DType || !info.Shape.SequenceEqual(expected.Shape))
                throw new ModelFormatException(info.File, info.Name,
                    $"{info.DType.SafetensorsName()} {info.ShapeText} does not match {expected.DType.SafetensorsName()} [{string.Join(", ", expected.Shape)}] of a [{rows}, {cols}] int{bits} block-{m.BlockSize} weight");
        }
        var bytes = new byte[data.ByteLength];
        source.ReadRaw(data.Name, bytes);
        var zps = new byte[source.Get(ZeroPointsName(weight), weight).ByteLength];
        source.ReadRaw(ZeroPointsName(weight), zps);
        var scales = new float[(long)rows * m.BlocksPerRow];
        source.ReadFloat32(ScalesName(weight), scales);
        return m with { Data = bytes, Scales = scales, ZeroPoints = zps };
    }
}
