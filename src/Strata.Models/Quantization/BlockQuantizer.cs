namespace Strata.Models.Quantization;

/// <summary>
/// Block-wise asymmetric round-to-nearest quantization of weight rows for <c>MatMulNBits</c>.
/// </summary>
/// <remarks>
/// Each block's range is widened to hold 0, [min(0, min x), max(0, max x)], and mapped onto 0 .. 2^bits - 1:
/// scale = (max - min) / (2^bits - 1), zero point = round(-min / scale), q = clamp(round(x / scale) + zp). Keeping 0
/// in the range keeps the zero point inside the unsigned range (so it packs into the same bits) and makes 0, the
/// value of padding, exact. The error of each value is at most scale / 2. Asymmetric (with zero points) rather than
/// symmetric, because trained weight blocks are rarely centred on 0 and a 4-bit grid has only 16 steps to spare.
/// </remarks>
public static class BlockQuantizer
{
    /// <summary>Bit widths quantized weights may use (those ONNX Runtime's CPU MatMulNBits runs and Strata imports).</summary>
    public static readonly IReadOnlyList<int> SupportedBits = [4, 8];

    /// <summary>Block sizes <c>strata import --block</c> accepts.</summary>
    public static readonly IReadOnlyList<int> SupportedBlockSizes = [16, 32, 64, 128, 256];

    /// <summary>Throws when MatMulNBits cannot run <paramref name="bits"/> with <paramref name="blockSize"/>.</summary>
    public static void CheckScheme(int bits, int blockSize)
    {
        if (!SupportedBits.Contains(bits))
            throw new ArgumentException($"{bits}-bit weights are not supported (4 or 8)");
        if (!SupportedBlockSizes.Contains(blockSize))
            throw new ArgumentException($"block size {blockSize} is not supported ({string.Join(", ", SupportedBlockSizes)})");
    }

    /// <summary>Quantizes a row-major W [<paramref name="rows"/>, <paramref name="cols"/>].</summary>
    public static QuantizedMatrix Quantize(ReadOnlySpan<float> weights, int rows, int cols, int bits, int blockSize)
    {
        CheckScheme(bits, blockSize);
        if (rows < 1 || cols < 1 || weights.Length != (long)rows * cols)
            throw new ArgumentException($"{weights.Length} values do not fill a [{rows}, {cols}] matrix", nameof(weights));
        var m = new QuantizedMatrix(rows, cols, bits, blockSize, [], [], []);
        int blocks = m.BlocksPerRow;
        m = m with
        {
            Data = new byte[(long)rows * m.DataBytesPerRow],
            Scales = new float[(long)rows * blocks],
            ZeroPoints = new byte[(long)rows * m.ZeroPointBytesPerRow],
        };
        int qmax = (1 << bits) - 1;
        var q = new byte[blockSize];
        for (int r = 0; r < rows; r++)
        {
            var row = weights.Slice(r * cols, cols);
            for (int b = 0; b < blocks; b++)
            {
                int start = b * blockSize, n = Math.Min(blockSize, cols - start);
                var block = row.Slice(start, n);
                float min = 0, max = 0;
                foreach (float x in block)
                {
                    if (!float.IsFinite(x)) throw new ArgumentException($"row {r}, block at column {start}: weight {x} is not finite");
                    min = Math.Min(min, x);
                    max = Math.Max(max, x);
                }
                float scale = (max - min) / qmax;
                int zp = scale == 0 ? 0 : Math.Clamp((int)MathF.Round(-min / scale), 0, qmax);
                float inv = scale == 0 ? 0 : 1 / scale;
                for (int i = 0; i < n; i++) q[i] = (byte)Math.Clamp((int)MathF.Round(block[i] * inv) + zp, 0, qmax);
                for (int i = n; i < blockSize; i++) q[i] = (byte)zp;
                m.Scales[(long)r * blocks + b] = scale;
                Pack(q, bits, m.Data.AsSpan((int)((long)r * m.DataBytesPerRow + (long)b * m.BlockBytes), m.BlockBytes));
                SetPacked(m.ZeroPoints.AsSpan(r * m.ZeroPointBytesPerRow, m.ZeroPointBytesPerRow), bits, b, zp);
            }
        }
        return m;
    }

    /// <summary>The float matrix W [N, K] that <paramref name="m"/> stands for (padding dropped).</summary>
    public static float[] Dequantize(QuantizedMatrix m)
    {
        m.Validate();
        var w = new float[(long)m.Rows * m.Cols];
        for (int r = 0; r < m.Rows; r++)
        {
            var data = m.Data.AsSpan(r * m.DataBytesPerRow, m.DataBytesPerRow);
            var zps = m.ZeroPoints.AsSpan(r * m.ZeroPointBytesPerRow, m.ZeroPointBytesPerRow);
            for (int k = 0; k < m.Cols; k++)
            {
                int b = k / m.BlockSize;
                float scale = m.Scales[(long)r * m.BlocksPerRow + b];
                w[(long)r * m.Cols + k] = (GetPacked(data, m.Bits, k) - GetPacked(zps, m.Bits, b)) * scale;
            }
        }
        return w;
    }

    /// <summary>Value <paramref name="index"/> of a packed run of <paramref name="bits"/>-bit values (low bits first).</summary>
    public static int GetPacked(ReadOnlySpan<byte> packed, int bits, int index) => bits == 8
        ? packed[index]
        : (packed[index / 2] >> (index % 2 * 4)) & 0xF;

    private static void SetPacked(Span<byte> packed, int bits, int index, int value)
    {
        if (bits == 8)
        {
            packed[index] = (byte)value;
            return;
        }
        int shift = index % 2 * 4;
        packed[index / 2] = (byte)((packed[index / 2] & ~(0xF << shift)) | (value << shift));
    }

    private static void Pack(ReadOnlySpan<byte> values, int bits, Span<byte> dest)
    {
        if (bits == 8)
        {
            values.CopyTo(dest);
            return;
        }
        for (int j = 0; j < dest.Length; j++) dest[j] = (byte)(values[2 * j] | (values[2 * j + 1] << 4));
    }
}
