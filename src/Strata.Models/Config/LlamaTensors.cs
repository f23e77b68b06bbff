namespace Strata.Models.Config;

/// <summary>An expected weight: its Hugging Face name and shape.</summary>
/// <param name="Name">Tensor name.</param>
/// <param name="Shape">Expected shape ([out, in] for linear weights, as Hugging Face stores them).</param>
/// <param name="Layer">The decoder layer it belongs to, or -1 for the embedding, final norm and LM head.</param>
public sealed record ExpectedTensor(string Name, long[] Shape, int Layer);

/// <summary>Hugging Face tensor names of a Llama-family checkpoint, and the shapes a config implies.</summary>
public static class LlamaTensors
{
    /// <summary>Token embedding, [vocab, hidden].</summary>
    public const string Embed = "model.embed_tokens.weight";
    /// <summary>Final RMSNorm weight, [hidden].</summary>
    public const string FinalNorm = "model.norm.weight";
    /// <summary>Untied LM head, [vocab, hidden].</summary>
    public const string LmHead = "lm_head.weight";

    /// <summary>Prefix of every tensor of layer <paramref name="i"/>.</summary>
    public static string Layer(int i) => $"model.layers.{i}.";
    /// <summary>Input RMSNorm of layer i.</summary>
    public static string InputNorm(int i) => Layer(i) + "input_layernorm.weight";
    /// <summary>Post-attention RMSNorm of layer i.</summary>
    public static string PostAttentionNorm(int i) => Layer(i) + "post_attention_layernorm.weight";
    /// <summary>Attention projection weight of layer i; <paramref name="proj"/> is q, k, v or o.</summary>
    public static string Attn(int i, char proj) => Layer(i) + $"self_attn.{proj}_proj.weight";
    /// <summary>Attention projection bias of layer i (q, k or v).</summary>
    public static string AttnBias(int i, char proj) => Layer(i) + $"self_attn.{proj}_proj.bias";
    /// <summary>MLP projection of layer i; <paramref name="proj"/> is gate, up or down.</summary>
    public static string Mlp(int i, string proj) => Layer(i) + $"mlp.{proj}_proj.weight";

    /// <summary>The layer a tensor name belongs to, or -1 when it is not a layer tensor.</summary>
    public static int LayerOf(string name)
    {
        const string prefix = "model.layers.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return -1;
        int dot = name.IndexOf('.', prefix.Length);
        return dot > prefix.Length && int.TryParse(name.AsSpan(prefix.Length, dot - prefix.Length), out int i) ? i : -1;
    }

    /// <summary>Every tensor a checkpoint of this shape must hold, with its shape.</summary>
    public static IEnumerable<ExpectedTensor> Expected(LlamaConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        yield return new(Embed, [c.VocabSize, h], -1);
        for (int i = 0; i < c.NumLayers; i++)
        {
            yield return new(InputNorm(i), [h], i);
            yield return new(Attn(i, 'q'), [q, h], i);
            yield return new(Attn(i, 'k'), [kv, h], i);
            yield return new(Attn(i, 'v'), [kv, h], i);
            if (c.AttentionBias)
            {
                yield return new(AttnBias(i, 'q'), [q], i);
                yield return new(AttnBias(i, 'k'), [kv], i);
                yield return new(AttnBias(i, 'v'), [kv], i);
            }
            yield return new(Attn(i, 'o'), [h, q], i);
            yield return new(PostAttentionNorm(i), [h], i);
            yield return new(Mlp(i, "gate"), [f, h], i);
            yield return new(Mlp(i, "up"), [f, h], i);
            yield return new(Mlp(i, "down"), [h, f], i);
        }
        yield return new(FinalNorm, [h], -1);
        if (!c.TieWordEmbeddings) yield return new(LmHead, [c.VocabSize, h], -1);
    }
}
