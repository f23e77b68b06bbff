using System.Buffers.Binary;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>The element types of GGUF tensors that Strata reads (ggml's <c>ggml_type</c> numbering).</summary>
public enum GgmlType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32 = 0,
    /// <summary>IEEE 754 binary16.</summary>
    F16 = 1,
    /// <summary>Blocks of 32: an fp16 scale d and 32 4-bit values q, value = d * (q - 8).</summary>
    Q4_0 = 2,
    /// <summary>Blocks of 32: an fp16 scale d and 32 signed bytes q, value = d * q.</summary>
    Q8_0 = 8,
    /// <summary>Super-blocks of 256: fp16 d and dmin, eight 6-bit sub-block scales and mins, 4-bit values.</summary>
    Q4_K = 12,
    /// <summary>Super-blocks of 256: 6-bit values, sixteen int8 sub-block scales, an fp16 d.</summary>
    Q6_K = 14,
    /// <summary>bfloat16.</summary>
    BF16 = 30,
}

/// <summary>Block sizes and dequantization of <see cref="GgmlType"/>s, exactly as ggml's reference code.</summary>
public static class GgmlTypes
{
    /// <summary>Whether <paramref name="raw"/> (a <c>ggml_type</c> number from a file) is one Strata reads.</summary>
    public static bool IsSupported(uint raw) => Enum.IsDefined(typeof(GgmlType), (int)Math.Min(raw, int.MaxValue));

    /// <summary>The name ggml gives a type number, for errors about types Strata does not read.</summary>
    public static string NameOf(uint raw) => raw switch
    {
        3 => "Q4_1", 6 => "Q5_0", 7 => "Q5_1", 9 => "Q8_1", 10 => "Q2_K", 11 => "Q3_K", 13 => "Q5_K", 15 => "Q8_K",
        16 => "IQ2_XXS", 17 => "IQ2_XS", 18 => "IQ3_XXS", 19 => "IQ1_S", 20 => "IQ4_NL", 21 => "IQ3_S", 22 => "IQ2_S",
        23 => "IQ4_XS", 24 => "I8", 25 => "I16", 26 => "I32", 27 => "I64", 28 => "F64", 29 => "IQ1_M",
        _ => IsSupported(raw) ? ((GgmlType)raw).ToString() : $"type {raw}",
    };

    /// <summary>Elements per block (1 for float types).</summary>
    public static int BlockElements(this GgmlType t) => t switch
    {
        GgmlType.Q4_0 or GgmlType.Q8_0 => 32,
        GgmlType.Q4_K or GgmlType.Q6_K => 256,
        _ => 1,
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(this GgmlType t) => t switch
    {
        GgmlType.F32 => 4,
        GgmlType.F16 or GgmlType.BF16 => 2,
        GgmlType.Q4_0 => 18,
        GgmlType.Q8_0 => 34,
        GgmlType.Q4_K => 144,
        GgmlType.Q6_K => 210,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Whether the type is block-quantized.</summary>
    public static bool IsQuantized(this GgmlType t) => t.BlockElements() > 1;

    /// <summary>The float dtype of a float type; null for quantized types.</summary>
    public static TensorDType? FloatDType(this GgmlType t) => t switch
    {
        GgmlType.F32 => TensorDType.F32,
        GgmlType.F16 => TensorDType.F16,
        GgmlType.BF16 => TensorDType.BF16,
        _ => null,
    };

    /// <summary>Bytes of a row of <paramref name="elements"/> values (a whole number of blocks).</summary>
    public static long RowBytes(this GgmlType t, long elements) => elements / t.BlockElements() * t.BlockBytes();

    /// <summary>Dequantizes whole blocks of <paramref name="src"/> into <paramref name="dst"/> (one value per element).</summary>
    public static void Dequantize(GgmlType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (t.FloatDType() is { } dtype)
        {
            TensorDTypes.ToFloat32(dtype, src, dst);
            return;
        }
        int block = t.BlockElements(), bytes = t.BlockBytes();
        for (int b = 0; b < dst.Length / block; b++)
        {
            var s = src.Slice(b * bytes, bytes);
            var d = dst.Slice(b * block, block);
            switch (t)
            {
                case GgmlType.Q4_0: DequantizeQ4_0(s, d); break;
                case GgmlType.Q8_0: DequantizeQ8_0(s, d); break;
                case GgmlType.Q4_K: DequantizeQ4K(s, d); break;
                case GgmlType.Q6_K: DequantizeQ6K(s, d); break;
                default: throw new ArgumentOutOfRangeException(nameof(t));
            }
        }
    }

    internal static float Half(ReadOnlySpan<byte> b) => (float)BinaryPrimitives.ReadHalfLittleEndian(b);

    private static void DequantizeQ4_0(ReadOnlySpan<byte> s, Span<float> y)
    {
        float d = Half(s);
        for (int j = 0; j < 16; j++)
        {
            y[j] = ((s[2 + j] & 0xF) - 8) * d;
            y[j + 16] = ((s[2 + j] >> 4) - 8) * d;
        }
    }

    private static void DequantizeQ8_0(ReadOnlySpan<byte> s, Span<float> y)
    {
        float d = Half(s);
        for (int j = 0; j < 32; j++) y[j] = (sbyte)s[2 + j] * d;
    }

    /// <summary>Sub-block <paramref name="j"/>'s 6-bit scale and min of a Q4_K super-block (ggml's get_scale_min_k4).</summary>
    internal static (int Scale, int Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));

    private static void DequantizeQ4K(ReadOnlySpan<byte> s, Span<float> y)
    {
        // Layout: d (fp16), dmin (fp16), scales[12], qs[128].
        float d = Half(s), min = Half(s[2..]);
        var scales = s.Slice(4, 12);
        var q = s.Slice(16, 128);
        for (int j = 0, sub = 0; j < 256; j += 64, sub += 2)
        {
            var (sc1, m1) = ScaleMinK4(sub, scales);
            var (sc2, m2) = ScaleMinK4(sub + 1, scales);
            float d1 = d * sc1, mm1 = min * m1, d2 = d * sc2, mm2 = min * m2;
            var qs = q.Slice(j / 2, 32);
            for (int l = 0; l < 32; l++) y[j + l] = d1 * (qs[l] & 0xF) - mm1;
            for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (qs[l] >> 4) - mm2;
        }
    }

    private static void DequantizeQ6K(ReadOnlySpan<byte> s, Span<float> y)
    {
        // Layout: ql[128], qh[64], scales[16] (int8), d (fp16).
        float d = Half(s[208..]);
        for (int n = 0; n < 2; n++)
        {
            var ql = s.Slice(n * 64, 64);
            var qh = s.Slice(128 + n * 32, 32);
            var sc = s.Slice(192 + n * 8, 8);
            var o = y.Slice(n * 128, 128);
            for (int l = 0; l < 32; l++)
            {
                int i = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                o[l] = d * (sbyte)sc[i] * q1;
                o[l + 32] = d * (sbyte)sc[i + 2] * q2;
                o[l + 64] = d * (sbyte)sc[i + 4] * q3;
                o[l + 96] = d * (sbyte)sc[i + 6] * q4;
            }
        }
    }
}
