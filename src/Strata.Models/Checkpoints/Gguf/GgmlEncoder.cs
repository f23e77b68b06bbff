using System.Buffers.Binary;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// Encodes float rows as ggml blocks. Q8_0 and Q4_0 follow ggml's reference quantizers exactly (so a file written
/// here holds the blocks llama.cpp's own <c>quantize</c> would); Q4_K uses a plain min/max fit per 32-value sub-block
/// and Q6_K a plain absolute-maximum fit per 16-value sub-block, rather than ggml's iterative searches, which is enough
/// to exercise the formats.
/// </summary>
public static class GgmlEncoder
{
    /// <summary>Types <see cref="Encode"/> writes.</summary>
    public static readonly IReadOnlyList<GgmlType> Supported = [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K];

    /// <summary>Encodes <paramref name="values"/> (a whole number of blocks) as <paramref name="type"/>.</summary>
    public static byte[] Encode(GgmlType type, ReadOnlySpan<float> values)
    {
        if (values.Length % type.BlockElements() != 0)
            throw new ArgumentException($"{values.Length} values are not a whole number of {type} blocks of {type.BlockElements()}");
        var result = new byte[type.RowBytes(values.Length)];
        if (type.FloatDType() is { } dtype)
        {
            TensorDTypes.FromFloat32(dtype, values, result);
            return result;
        }
        int block = type.BlockElements(), bytes = type.BlockBytes();
        for (int b = 0; b < values.Length / block; b++)
        {
            var x = values.Slice(b * block, block);
            var y = result.AsSpan(b * bytes, bytes);
            switch (type)
            {
                case GgmlType.Q8_0: EncodeQ8_0(x, y); break;
                case GgmlType.Q4_0: EncodeQ4_0(x, y); break;
                case GgmlType.Q4_K: EncodeQ4K(x, y); break;
                case GgmlType.Q6_K: EncodeQ6K(x, y); break;
                default: throw new ArgumentException($"encoding {type} is not supported ({string.Join(", ", Supported)})");
            }
        }
        return result;
    }

    private static void EncodeQ8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (float v in x) amax = Math.Max(amax, Math.Abs(v));
        float d = amax / 127;
        float id = d != 0 ? 1 / d : 0;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    private static void EncodeQ4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
        {
            if (amax < Math.Abs(v))
            {
                amax = Math.Abs(v);
                max = v;
            }
        }
        float d = max / -8;
        float id = d != 0 ? 1 / d : 0;
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        for (int j = 0; j < 16; j++)
        {
            int lo = Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
            int hi = Math.Min(15, (int)(sbyte)(x[16 + j] * id + 8.5f));
            y[2 + j] = (byte)(lo | (hi << 4));
        }
    }

    private static void EncodeQ4K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<float> scales = stackalloc float[8];
        Span<float> mins = stackalloc float[8];
        for (int j = 0; j < 8; j++)
        {
            var sub = x.Slice(32 * j, 32);
            float lo = 0, hi = 0;
            foreach (float v in sub)
            {
                lo = Math.Min(lo, v);
                hi = Math.Max(hi, v);
            }
            scales[j] = (hi - lo) / 15;
            mins[j] = -lo;
        }
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            maxScale = Math.Max(maxScale, scales[j]);
            maxMin = Math.Max(maxMin, mins[j]);
        }
        float d = (float)(Half)(maxScale / 63), dmin = (float)(Half)(maxMin / 63);
        BinaryPrimitives.WriteHalfLittleEndian(y, (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(y[2..], (Half)dmin);
        var packed = y.Slice(4, 12);
        packed.Clear();
        Span<byte> levels = stackalloc byte[256];
        for (int j = 0; j < 8; j++)
        {
            int ls = d == 0 ? 0 : Math.Clamp((int)MathF.Round(scales[j] / d), 0, 63);
            int lm = dmin == 0 ? 0 : Math.Clamp((int)MathF.Round(mins[j] / dmin), 0, 63);
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
            float step = d * ls, offset = dmin * lm;
            for (int l = 0; l < 32; l++)
                levels[32 * j + l] = (byte)(step == 0 ? 0 : Math.Clamp((int)MathF.Round((x[32 * j + l] + offset) / step), 0, 15));
        }
        var qs = y.Slice(16, 128);
        for (int j = 0; j < 256; j += 64)
            for (int l = 0; l < 32; l++) qs[j / 2 + l] = (byte)(levels[j + l] | (levels[j + l + 32] << 4));
    }

    private static void EncodeQ6K(ReadOnlySpan<float> x, Span<byte> y)
    {
        // Layout: ql[128], qh[64], scales[16] (int8), d (fp16); sub-block j (16 values) has scale d * scales[j].
        Span<float> steps = stackalloc float[16];
        float maxStep = 0;
        for (int j = 0; j < 16; j++)
        {
            float amax = 0;
            foreach (float v in x.Slice(16 * j, 16)) amax = Math.Max(amax, Math.Abs(v));
            steps[j] = amax / 31;
            maxStep = Math.Max(maxStep, steps[j]);
        }
        float d = (float)(Half)(maxStep / 127);
        BinaryPrimitives.WriteHalfLittleEndian(y[208..], (Half)d);
        Span<byte> levels = stackalloc byte[256];
        for (int j = 0; j < 16; j++)
        {
            int sc = d == 0 ? 0 : Math.Clamp((int)MathF.Round(steps[j] / d), -128, 127);
            y[192 + j] = (byte)(sbyte)sc;
            float step = d * sc;
            for (int l = 0; l < 16; l++)
                levels[16 * j + l] = (byte)(step == 0 ? 32 : Math.Clamp((int)MathF.Round(x[16 * j + l] / step) + 32, 0, 63));
        }
        for (int n = 0; n < 2; n++)
        {
            var ql = y.Slice(n * 64, 64);
            var qh = y.Slice(128 + n * 32, 32);
            var q = levels.Slice(n * 128, 128);
            for (int l = 0; l < 32; l++)
            {
                ql[l] = (byte)((q[l] & 0xF) | ((q[l + 64] & 0xF) << 4));
                ql[l + 32] = (byte)((q[l + 32] & 0xF) | ((q[l + 96] & 0xF) << 4));
                qh[l] = (byte)((q[l] >> 4) | ((q[l + 32] >> 4) << 2) | ((q[l + 64] >> 4) << 4) | ((q[l + 96] >> 4) << 6));
            }
        }
    }
}
