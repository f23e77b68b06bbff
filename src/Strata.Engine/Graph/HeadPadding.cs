using Strata.Models.Quantization;

namespace Strata.Engine.Graph;

/// <summary>
/// Re-lays per-head rows of attention weights from head width <see cref="Original"/> to <see cref="Padded"/>,
/// filling the new dims with zeros. Rows are [heads * d, width] row-major; the result is [heads * dp, width].
/// </summary>
internal sealed record HeadPadding(int Original, int Padded)
{
    /// <summary>q/k rows: keep rotate_half pairs, dim i (i &lt; d/2) at i and dim d/2 + i at dp/2 + i.</summary>
    public float[] RotaryRows(float[] rows, int width) => Pad(rows, width, i => i < Original / 2 ? i : i - Original / 2 + Padded / 2);

    /// <summary>v rows (and o_proj input columns, transposed): dim i stays at i.</summary>
    public float[] PlainRows(float[] rows, int width) => Pad(rows, width, i => i);

    /// <summary>q/k rows of a quantized [heads * d, K] weight, padded like <see cref="RotaryRows(float[], int)"/>.</summary>
    public QuantizedMatrix RotaryRows(QuantizedMatrix m) => Pad(m, i => i < Original / 2 ? i : i - Original / 2 + Padded / 2);

    /// <summary>v rows of a quantized [heads * d, K] weight, padded like <see cref="PlainRows(float[], int)"/>.</summary>
    public QuantizedMatrix PlainRows(QuantizedMatrix m) => Pad(m, i => i);

    private QuantizedMatrix Pad(QuantizedMatrix m, Func<int, int> target) => Original == Padded
        ? m
        : m.MapRows(m.Rows / Original * Padded, r => r / Original * Padded + target(r % Original));

    private float[] Pad(float[] rows, int width, Func<int, int> target)
    {
        if (Original == Padded) return rows;
        int heads = rows.Length / width / Original;
        var dst = new float[(long)heads * Padded * width];
        for (int n = 0; n < heads; n++)
            for (int i = 0; i < Original; i++)
                Array.Copy(rows, ((long)n * Original + i) * width, dst, ((long)n * Padded + target(i)) * width, width);
        return dst;
    }
}
