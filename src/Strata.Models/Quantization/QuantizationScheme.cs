using Strata.Models.Config;

namespace Strata.Models.Quantization;

/// <summary>
/// Weight-only quantization of a package (<c>strata import --quant</c>): the q, k, v, o, gate, up and down
/// projections of every decoder layer not in <see cref="FloatLayers"/>, and the LM head when
/// <see cref="QuantizedHead"/>, are stored block-wise quantized (see <see cref="BlockQuantizer"/>). Norms, biases
/// and the embedding keep the package's float dtype.
/// </summary>
/// <param name="Bits">4 or 8.</param>
/// <param name="BlockSize">Values per block along K (16 to 256, a power of two).</param>
public sealed record QuantizationScheme(int Bits, int BlockSize)
{
    /// <summary>Block size when <c>--block</c> is not given.</summary>
    public const int DefaultBlockSize = 32;

    /// <summary>Layers kept in float (<c>--keep-fp</c>), ascending.</summary>
    public IReadOnlyList<int> FloatLayers { get; init; } = [];

    /// <summary>Whether the LM head is quantized too (<c>--quant-head</c>). For a tied model the package then holds a
    /// quantized copy of the embedding matrix as the head, and the embedding itself stays float.</summary>
    public bool QuantizedHead { get; init; }

    /// <summary>The manifest's <c>quantization</c> value: int4 or int8.</summary>
    public string Name => $"int{Bits}";

    /// <summary>Parses <c>int8</c> or <c>int4</c>; null when <paramref name="text"/> is neither.</summary>
    public static int? ParseBits(string text) => text.ToLowerInvariant() switch
    {
        "int8" => 8,
        "int4" => 4,
        _ => null,
    };

    /// <summary>Throws when the bits, block size or float layers are not valid for <paramref name="config"/>.</summary>
    public void Validate(LlamaConfig config)
    {
        BlockQuantizer.CheckScheme(Bits, BlockSize);
        foreach (int layer in FloatLayers)
            if (layer < 0 || layer >= config.NumLayers)
                throw new ArgumentException($"layer {layer} kept in float is not a layer of this model (0 to {config.NumLayers - 1})");
    }

    /// <summary>Whether <paramref name="tensor"/> (a Hugging Face weight) is stored quantized.</summary>
    public bool Quantizes(ExpectedTensor tensor)
    {
        if (tensor.Layer < 0) return QuantizedHead && tensor.Name == LlamaTensors.LmHead;
        if (FloatLayers.Contains(tensor.Layer)) return false;
        return LinearWeights(tensor.Layer).Contains(tensor.Name);
    }

    /// <summary>The seven projection weights of layer <paramref name="layer"/>.</summary>
    public static IEnumerable<string> LinearWeights(int layer) =>
    [
        LlamaTensors.Attn(layer, 'q'), LlamaTensors.Attn(layer, 'k'), LlamaTensors.Attn(layer, 'v'), LlamaTensors.Attn(layer, 'o'),
        LlamaTensors.Mlp(layer, "gate"), LlamaTensors.Mlp(layer, "up"), LlamaTensors.Mlp(layer, "down"),
    ];

    /// <summary>
    /// Parses a <c>--keep-fp</c> list: layer indices and inclusive ranges separated by commas (<c>0,3-5</c>).
    /// </summary>
    /// <exception cref="FormatException">The text is not such a list (the message names the bad part).</exception>
    public static IReadOnlyList<int> ParseLayers(string text)
    {
        var result = new SortedSet<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            string[] ends = part.Split('-', StringSplitOptions.TrimEntries);
            if (ends.Length is < 1 or > 2 || !ends.All(e => int.TryParse(e, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)))
                throw new FormatException($"'{part}' is not a layer index or range (e.g. 0,3-5)");
            int first = int.Parse(ends[0], System.Globalization.CultureInfo.InvariantCulture);
            int last = int.Parse(ends[^1], System.Globalization.CultureInfo.InvariantCulture);
            if (last < first) throw new FormatException($"range '{part}' ends before it starts");
            for (int i = first; i <= last; i++) result.Add(i);
        }
        return result.ToList();
    }
}
