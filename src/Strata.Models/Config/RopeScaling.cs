namespace Strata.Models.Config;

/// <summary>Llama-3 style RoPE frequency scaling (<c>rope_scaling.rope_type == "llama3"</c>).</summary>
/// <param name="Factor">Scaling factor for low frequencies.</param>
/// <param name="LowFreqFactor">Wavelengths above original_max/low_freq_factor are scaled fully.</param>
/// <param name="HighFreqFactor">Wavelengths below original_max/high_freq_factor are kept.</param>
/// <param name="OriginalMaxPositionEmbeddings">The context length the model was pretrained with.</param>
public sealed record RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositionEmbeddings)
{
    /// <summary>
    /// The inverse frequencies <c>theta^(-2i/d)</c> for i in [0, d/2), scaled as Hugging Face's
    /// <c>_compute_llama3_parameters</c> does when <paramref name="scaling"/> is set.
    /// </summary>
    public static double[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = new double[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
            inv[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (scaling is null) return inv;

        double lowFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double wavelen = 2 * Math.PI / inv[i];
            if (wavelen > lowFreqWavelen)
            {
                inv[i] /= scaling.Factor;
            }
            else if (wavelen >= highFreqWavelen)
            {
                double smooth = (scaling.OriginalMaxPositionEmbeddings / wavelen - scaling.LowFreqFactor)
                                / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                inv[i] = (1 - smooth) * inv[i] / scaling.Factor + smooth * inv[i];
            }
        }
        return inv;
    }
}
