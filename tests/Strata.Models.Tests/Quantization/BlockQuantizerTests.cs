using Strata.Models.Quantization;
using Strata.Models.Synthetic;

namespace Strata.Models.Tests.Quantization;

public class BlockQuantizerTests
{
    private static float[] Random(int n, ulong seed, float scale = 1)
    {
        var rng = new SplitMix64(seed);
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = rng.NextSymmetric() * scale;
        return values;
    }

    [Theory]
    [InlineData(8, 32, 16, 64)]
    [InlineData(4, 32, 16, 64)]
    [InlineData(8, 32, 64, 172)] // stories260K's down_proj: K = 172 is 5.375 blocks of 32
    [InlineData(4, 32, 64, 172)]
    [InlineData(4, 64, 7, 100)]
    [InlineData(4, 128, 5, 300)]
    [InlineData(8, 128, 3, 20)] // one block, mostly padding
    [InlineData(4, 16, 9, 33)]
    public void Round_trip_error_is_at_most_half_a_step_of_each_block(int bits, int block, int rows, int cols)
    {
        var w = Random(rows * cols, (ulong)(bits * 1000 + block + cols));
        var m = BlockQuantizer.Quantize(w, rows, cols, bits, block);
        m.Validate();
        Assert.Equal((cols + block - 1) / block, m.BlocksPerRow);
        Assert.Equal(rows * m.BlocksPerRow * block * bits / 8, m.Data.Length);
        var back = BlockQuantizer.Dequantize(m);
        Assert.Equal(w.Length, back.Length);
        double sumSq = 0, refSq = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int k = 0; k < cols; k++)
            {
                float scale = m.Scales[r * m.BlocksPerRow + k / block];
                float err = Math.Abs(w[r * cols + k] - back[r * cols + k]);
                Assert.True(err <= scale / 2 * 1.0001f + 1e-7f, $"[{r}, {k}]: error {err} exceeds half a step {scale / 2}");
                sumSq += err * err;
                refSq += w[r * cols + k] * (double)w[r * cols + k];
            }
        }
        // Relative RMS error: a uniform grid of 2^bits steps over about [-1, 1].
        double relative = Math.Sqrt(sumSq / refSq);
        Assert.True(relative < (bits == 8 ? 0.01 : 0.15), $"relative RMS error {relative}");
    }

    [Fact]
    public void Padding_holds_the_zero_point_and_zero_blocks_are_exact()
    {
        var w = new float[2 * 40];
        // Row 1: each block spans 0 .. 15, exact with scale 1 and zero point 0.
        for (int k = 0; k < 40; k++) w[40 + k] = k < 32 ? k % 16 : k % 2 == 0 ? (k - 32) / 2 : 15 - (k - 32) / 2;
        var m = BlockQuantizer.Quantize(w, 2, 40, 4, 32);
        Assert.Equal(0, m.Scales[0]);
        Assert.Equal(new float[40], BlockQuantizer.Dequantize(m).AsSpan(0, 40).ToArray());
        // Row 1, block 1 holds 8 values and 24 of padding, all at the block's zero point.
        var row1 = m.Data.AsSpan(m.DataBytesPerRow, m.DataBytesPerRow);
        int zp = BlockQuantizer.GetPacked(m.ZeroPoints.AsSpan(m.ZeroPointBytesPerRow, m.ZeroPointBytesPerRow), 4, 1);
        for (int k = 40; k < 64; k++) Assert.Equal(zp, BlockQuantizer.GetPacked(row1, 4, k));
        var back = BlockQuantizer.Dequantize(m);
        for (int k = 0; k < 40; k++) Assert.Equal(w[40 + k], back[40 + k], 1e-6f);
    }

    [Fact]
    public void Four_bit_values_pack_low_nibble_first()
    {
        var w = new float[16];
        for (int i = 0; i < 16; i++) w[i] = i; // min 0, max 15: scale 1, zero point 0, q = value
        var m = BlockQuantizer.Quantize(w, 1, 16, 4, 16);
        Assert.Equal(1f, m.Scales[0]);
        Assert.Equal(0, m.ZeroPoints[0]);
        Assert.Equal(0x10, m.Data[0]);
        Assert.Equal(0xFE, m.Data[7]);
    }

    [Fact]
    public void Rows_map_and_stack_without_changing_values()
    {
        var a = BlockQuantizer.Quantize(Random(3 * 50, 7), 3, 50, 4, 32);
        var b = BlockQuantizer.Quantize(Random(2 * 50, 8), 2, 50, 4, 32);
        var stacked = QuantizedMatrix.ConcatRows(a, b);
        var padded = stacked.MapRows(10, r => 2 * r);
        var wa = BlockQuantizer.Dequantize(a);
        var wb = BlockQuantizer.Dequantize(b);
        var wp = BlockQuantizer.Dequantize(padded);
        var expected = new float[10 * 50];
        for (int r = 0; r < 5; r++)
            (r < 3 ? wa.AsSpan(r * 50, 50) : wb.AsSpan((r - 3) * 50, 50)).CopyTo(expected.AsSpan(2 * r * 50, 50));
        Assert.Equal(expected, wp);
    }

    [Theory]
    [InlineData(3, 32)]
    [InlineData(4, 48)]
    [InlineData(8, 8)]
    public void Unsupported_schemes_are_refused(int bits, int block) =>
        Assert.Throws<ArgumentException>(() => BlockQuantizer.Quantize(new float[64], 1, 64, bits, block));

    [Fact]
    public void Keep_fp_lists_parse_indices_and_ranges()
    {
        Assert.Equal([0, 3, 4, 5], QuantizationScheme.ParseLayers("0,3-5"));
        Assert.Equal([2], QuantizationScheme.ParseLayers(" 2 , 2"));
        Assert.Throws<FormatException>(() => QuantizationScheme.ParseLayers("1-"));
        Assert.Throws<FormatException>(() => QuantizationScheme.ParseLayers("5-3"));
        Assert.Throws<FormatException>(() => QuantizationScheme.ParseLayers("x"));
    }
}
