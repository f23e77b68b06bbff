namespace Strata.Models.Quantization;

/// <summary>
/// A weight matrix W [<see cref="Rows"/> = N, <see cref="Cols"/> = K] (Hugging Face's [out, in]) quantized block-wise
/// along K, in the layout of ONNX Runtime's <c>com.microsoft.MatMulNBits</c>: each row is cut into blocks of
/// <see cref="BlockSize"/> values (the last one padded), and each block has a float scale and an unsigned zero point,
/// so that W[n, k] = (q[n, k] - zp[n, k / BlockSize]) * scale[n, k / BlockSize].
/// </summary>
/// <param name="Rows">N: output features.</param>
/// <param name="Cols">K: input features (not necessarily a multiple of the block size).</param>
/// <param name="Bits">Bits per value: 4 or 8.</param>
/// <param name="BlockSize">Values per block along K: a power of two, at least 16.</param>
/// <param name="Data">Packed values, [N, BlocksPerRow, BlockBytes]; for 4 bits byte j holds value 2j in its low nibble
/// and value 2j + 1 in its high nibble. Padding values equal the block's zero point (they dequantize to 0).</param>
/// <param name="Scales">Per-block scales, [N, BlocksPerRow].</param>
/// <param name="ZeroPoints">Per-block zero points, packed like <paramref name="Data"/> along each row's blocks,
/// [N, ZeroPointBytesPerRow] (each row padded to whole bytes).</param>
public sealed record QuantizedMatrix(int Rows, int Cols, int Bits, int BlockSize, byte[] Data, float[] Scales, byte[] ZeroPoints)
{
    /// <summary>Blocks per row: ceil(K / block size).</summary>
    public int BlocksPerRow => (Cols + BlockSize - 1) / BlockSize;

    /// <summary>Bytes per block: block size * bits / 8.</summary>
    public int BlockBytes => BlockSize * Bits / 8;

    /// <summary>Bytes of packed zero points per row.</summary>
    public int ZeroPointBytesPerRow => (BlocksPerRow * Bits + 7) / 8;

    /// <summary>Bytes of packed values per row.</summary>
    public int DataBytesPerRow => BlocksPerRow * BlockBytes;

    /// <summary>Throws when the arrays do not match the shape, or the bits or block size are not ones MatMulNBits runs.</summary>
    public void Validate()
    {
        BlockQuantizer.CheckScheme(Bits, BlockSize);
        if (Rows < 1 || Cols < 1) throw new ArgumentException($"quantized matrix [{Rows}, {Cols}] is empty");
        if (Data.LongLength != (long)Rows * DataBytesPerRow || Scales.LongLength != (long)Rows * BlocksPerRow
            || ZeroPoints.LongLength != (long)Rows * ZeroPointBytesPerRow)
            throw new ArgumentException($"quantized matrix [{Rows}, {Cols}] (int{Bits}, block {BlockSize}): data, scales or zero points have the wrong length");
    }

    /// <summary>
    /// A matrix of <paramref name="rows"/> rows where source row r goes to row <paramref name="target"/>(r); rows no
    /// source row maps to are zero (scale 0). Used to pad attention heads and to pack q/k/v.
    /// </summary>
    public QuantizedMatrix MapRows(int rows, Func<int, int> target)
    {
        var data = new byte[(long)rows * DataBytesPerRow];
        var scales = new float[(long)rows * BlocksPerRow];
        var zps = new byte[(long)rows * ZeroPointBytesPerRow];
        for (int r = 0; r < Rows; r++)
        {
            int t = target(r);
            Array.Copy(Data, (long)r * DataBytesPerRow, data, (long)t * DataBytesPerRow, DataBytesPerRow);
            Array.Copy(Scales, (long)r * BlocksPerRow, scales, (long)t * BlocksPerRow, BlocksPerRow);
            Array.Copy(ZeroPoints, (long)r * ZeroPointBytesPerRow, zps, (long)t * ZeroPointBytesPerRow, ZeroPointBytesPerRow);
        }
        return this with { Rows = rows, Data = data, Scales = scales, ZeroPoints = zps };
    }

    /// <summary>Stacks matrices of the same K, bits and block size along N.</summary>
    public static QuantizedMatrix ConcatRows(params QuantizedMatrix[] parts)
    {
        ArgumentOutOfRangeException.ThrowIfZero(parts.Length);
        var first = parts[0];
        if (parts.Any(p => p.Cols != first.Cols || p.Bits != first.Bits || p.BlockSize != first.BlockSize))
            throw new ArgumentException("only matrices of the same K, bits and block size can be stacked");
        return first with
        {
            Rows = parts.Sum(p => p.Rows),
            Data = parts.SelectMany(p => p.Data).ToArray(),
            Scales = parts.SelectMany(p => p.Scales).ToArray(),
            ZeroPoints = parts.SelectMany(p => p.ZeroPoints).ToArray(),
        };
    }
}
