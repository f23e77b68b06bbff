using Strata.Models.Config;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>llama.cpp's tensor names for the Hugging Face names of a Llama-family model.</summary>
public static class GgufTensorNames
{
    /// <summary>The GGUF name of a Hugging Face tensor name; null for a name llama.cpp has no counterpart of.</summary>
    public static string? FromHf(string hf)
    {
        switch (hf)
        {
            case LlamaTensors.Embed: return "token_embd.weight";
            case LlamaTensors.FinalNorm: return "output_norm.weight";
            case LlamaTensors.LmHead: return "output.weight";
        }
        int layer = LlamaTensors.LayerOf(hf);
        if (layer < 0) return null;
        string rest = hf[LlamaTensors.Layer(layer).Length..];
        string? suffix = rest switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            _ => null,
        };
        return suffix is null ? null : $"blk.{layer}.{suffix}";
    }

    /// <summary>
    /// For the llama architecture, the heads whose rows llama.cpp's converter interleaved for its RoPE kernel: q (and
    /// its bias) by the query heads, k by the key/value heads; null for tensors stored in Hugging Face's order. Qwen2
    /// uses the NeoX RoPE layout in llama.cpp, which needs no permutation.
    /// </summary>
    public static int? PermutedHeads(string hf, LlamaConfig config, string ggufArchitecture)
    {
        if (ggufArchitecture != "llama") return null;
        int layer = LlamaTensors.LayerOf(hf);
        if (layer < 0) return null;
        if (hf == LlamaTensors.Attn(layer, 'q') || hf == LlamaTensors.AttnBias(layer, 'q')) return config.NumHeads;
        if (hf == LlamaTensors.Attn(layer, 'k') || hf == LlamaTensors.AttnBias(layer, 'k')) return config.NumKvHeads;
        return null;
    }
}

/// <summary>
/// The row permutation of llama.cpp's <c>convert_hf_to_gguf.py</c> (<c>permute</c>): W.reshape(heads, 2, rows /
/// heads / 2, in).swapaxes(1, 2), which interleaves the two rotary halves of every head. Row h*D + s*D/2 + i of the
/// Hugging Face matrix (D rows per head, s the half, i the position in it) becomes row h*D + 2i + s of the GGUF one.
/// A permutation of whole rows, so it applies to quantized rows (blocks run along a row) without touching a value.
/// </summary>
public static class GgufPermute
{
    /// <summary>The GGUF row holding Hugging Face row <paramref name="hfRow"/> of a [<paramref name="rows"/>, ...] matrix.</summary>
    public static int GgufRow(int hfRow, int rows, int heads)
    {
        int d = rows / heads, half = d / 2;
        int h = hfRow / d, rem = hfRow % d;
        return h * d + 2 * (rem % half) + rem / half;
    }

    /// <summary>Checks that <paramref name="rows"/> splits into <paramref name="heads"/> heads of an even size.</summary>
    public static void Check(int rows, int heads)
    {
        if (heads < 1 || rows % heads != 0 || rows / heads % 2 != 0)
            throw new ArgumentException($"{rows} rows do not split into {heads} heads of an even size");
    }

    /// <summary>Hugging Face order to GGUF order (what the converter does), rows of <paramref name="cols"/> values.</summary>
    public static T[] Permute<T>(ReadOnlySpan<T> hf, int rows, int cols, int heads)
    {
        Check(rows, heads);
        var result = new T[hf.Length];
        for (int r = 0; r < rows; r++) hf.Slice(r * cols, cols).CopyTo(result.AsSpan(GgufRow(r, rows, heads) * cols, cols));
        return result;
    }

    /// <summary>GGUF order back to Hugging Face order: the exact inverse of <see cref="Permute{T}"/>.</summary>
    public static T[] Unpermute<T>(ReadOnlySpan<T> gguf, int rows, int cols, int heads)
    {
        Check(rows, heads);
        var result = new T[gguf.Length];
        for (int r = 0; r < rows; r++) gguf.Slice(GgufRow(r, rows, heads) * cols, cols).CopyTo(result.AsSpan(r * cols, cols));
        return result;
    }
}
