namespace Strata.Engine.Graph;

/// <summary>
/// One pipeline stage: the contiguous decoder layers [<see cref="FirstLayer"/>, <see cref="EndLayer"/>) of a model
/// with <see cref="TotalLayers"/> layers. The first stage also embeds token ids; the last also applies the final
/// norm and the LM head.
/// </summary>
/// <param name="FirstLayer">First layer served (inclusive).</param>
/// <param name="EndLayer">End of the range (exclusive).</param>
/// <param name="TotalLayers">Layers in the whole model.</param>
public sealed record StageSpec(int FirstLayer, int EndLayer, int TotalLayers)
{
    /// <summary>Whether this stage embeds token ids (it serves layer 0).</summary>
    public bool IsFirst => FirstLayer == 0;

    /// <summary>Whether this stage applies the final norm and LM head (it serves the last layer).</summary>
    public bool IsLast => EndLayer == TotalLayers;

    /// <summary>Number of layers in this stage.</summary>
    public int LayerCount => EndLayer - FirstLayer;

    /// <summary>Throws when the range is empty or outside the model.</summary>
    public void Validate()
    {
        if (TotalLayers <= 0) throw new ArgumentOutOfRangeException(nameof(TotalLayers), "a model has at least one layer");
        if (FirstLayer < 0 || EndLayer > TotalLayers || FirstLayer >= EndLayer)
            throw new ArgumentOutOfRangeException(nameof(FirstLayer),
                $"layer range [{FirstLayer}, {EndLayer}) is empty or outside the model's {TotalLayers} layers");
    }

    /// <summary>Splits <paramref name="layers"/> layers into <paramref name="stages"/> contiguous ranges as evenly as
    /// possible (earlier stages take the remainder).</summary>
    public static IReadOnlyList<StageSpec> Even(int layers, int stages)
    {
        if (stages < 1 || stages > layers)
            throw new ArgumentOutOfRangeException(nameof(stages), $"stages must be between 1 and the number of layers ({layers}), got {stages}");
        var result = new List<StageSpec>(stages);
        int first = 0;
        for (int s = 0; s < stages; s++)
        {
            int count = layers / stages + (s < layers % stages ? 1 : 0);
            result.Add(new StageSpec(first, first + count, layers));
            first += count;
        }
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"layers [{FirstLayer}, {EndLayer}) of {TotalLayers}";
}
