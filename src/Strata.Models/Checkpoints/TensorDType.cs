namespace Strata.Models.Checkpoints;

/// <summary>Element types of stored weights.</summary>
public enum TensorDType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary16.</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of a binary32.</summary>
    BF16,
    /// <summary>Unsigned bytes: the packed blocks and zero points of quantized weights (never a checkpoint's weights).</summary>
    U8,
}

/// <summary>Helpers for <see cref="TensorDType"/>.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this TensorDType t) => t switch { TensorDType.F32 => 4, TensorDType.U8 => 1, _ => 2 };

    /// <summary>The safetensors spelling ("F32", "F16", "BF16").</summary>
    public static string SafetensorsName(this TensorDType t) => t switch
    {
        TensorDType.F32 => "F32",
        TensorDType.F16 => "F16",
        TensorDType.BF16 => "BF16",
        TensorDType.U8 => "U8",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Parses a safetensors dtype string; false for anything Strata cannot read.</summary>
    public static bool TryParseSafetensors(string s, out TensorDType t)
    {
        switch (s)
        {
            case "F32": t = TensorDType.F32; return true;
            case "F16": t = TensorDType.F16; return true;
            case "BF16": t = TensorDType.BF16; return true;
            case "U8": t = TensorDType.U8; return true;
            default: t = default; return false;
        }
    }

    /// <summary>Parses the user-facing spelling used by <c>--dtype</c> and manifests: fp32, fp16, bf16.</summary>
    public static bool TryParseUser(string s, out TensorDType t)
    {
        switch (s.ToLowerInvariant())
        {
            case "fp32" or "f32" or "float32": t = TensorDType.F32; return true;
            case "fp16" or "f16" or "float16": t = TensorDType.F16; return true;
            case "bf16" or "bfloat16": t = TensorDType.BF16; return true;
            default: t = default; return false;
        }
    }

    /// <summary>The user-facing spelling: fp32, fp16, bf16.</summary>
    public static string UserName(this TensorDType t) => t switch
    {
        TensorDType.F32 => "fp32",
        TensorDType.F16 => "fp16",
        TensorDType.BF16 => "bf16",
        TensorDType.U8 => "u8",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Converts stored elements of type <paramref name="t"/> to float32.</summary>
    public static void ToFloat32(TensorDType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < h.Length; i++) dst[i] = (float)h[i];
                break;
            case TensorDType.BF16:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < b.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
                break;
            case TensorDType.U8:
                for (int i = 0; i < src.Length; i++) dst[i] = src[i];
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(t));
        }
    }

    /// <summary>Converts float32 to stored elements of type <paramref name="t"/> (round to nearest even for bf16).</summary>
    public static void FromFloat32(TensorDType t, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (t)
        {
            case TensorDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case TensorDType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < src.Length; i++) h[i] = (Half)src[i];
                break;
            case TensorDType.BF16:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) b[i] = ToBFloat16(src[i]);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(t));
        }
    }

    private static ushort ToBFloat16(float f)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }
}
