using Strata.Models.Config;

namespace Strata.Models.Packaging;

/// <summary>Which tensors a pipeline stage needs: layers [first, end), optionally the embedding and the head.</summary>
internal static class TensorSelection
{
    /// <summary>Throws when [first, end) is not a range of the model's layers.</summary>
    public static void CheckRange(LlamaConfig c, int firstLayer, int endLayer)
    {
        if (firstLayer < 0 || endLayer > c.NumLayers || firstLayer > endLayer)
            throw new ArgumentOutOfRangeException(nameof(endLayer),
                $"layer range [{firstLayer}, {endLayer}) is not inside [0, {c.NumLayers})");
    }

    /// <summary>
    /// The expected tensors of the range. A tied head needs the embedding matrix, so <paramref name="includeHead"/>
    /// brings <c>model.embed_tokens.weight</c> along when <see cref="LlamaConfig.TieWordEmbeddings"/> is set.
    /// </summary>
    public static IEnumerable<ExpectedTensor> Select(LlamaConfig c, int firstLayer, int endLayer, bool includeEmbedding, bool includeHead)
    {
        CheckRange(c, firstLayer, endLayer);
        return LlamaTensors.Expected(c).Where(t =>
            t.Layer >= 0 ? t.Layer >= firstLayer && t.Layer < endLayer
            : t.Name == LlamaTensors.Embed ? includeEmbedding || (includeHead && c.TieWordEmbeddings)
            : includeHead);
    }
}
