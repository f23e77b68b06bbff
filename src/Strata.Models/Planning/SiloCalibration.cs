using System.Globalization;

namespace Strata.Models.Planning;

/// <summary>
/// What a silo measured about its device at start-up: its memory read bandwidth, and the step time of one decoder
/// layer of a reference shape at batch 1 and at batch 16. From these the planner predicts the step time of any stage
/// on the silo (<see cref="StageSeconds"/>).
/// </summary>
/// <param name="ReadBytesPerSecond">Sustained memory read bandwidth, bytes per second.</param>
/// <param name="LayerBytes">Weight bytes of the reference layer.</param>
/// <param name="LayerFlopsPerToken">Floating-point operations of the reference layer per token (2 per weight).</param>
/// <param name="LayerSecondsBatch1">Step time of the reference layer for one token, seconds.</param>
/// <param name="LayerSecondsBatch16">Step time of the reference layer for a batch of 16 tokens (one per row), seconds.</param>
/// <remarks>
/// <para>The model behind <see cref="StageSeconds"/>: a step reads every weight once whatever the batch, and does
/// 2 FLOPs a weight for every row. From the two measurements, the batch-dependent part is
/// (t16 - t1) / 15 per reference layer, so the device does <c>LayerFlopsPerToken x 15 / (t16 - t1)</c> FLOPs per second;
/// what is left of t1 is the batch-independent part. Of that, weight bytes / bandwidth is reading, the rest a per-layer
/// cost (kernel launches, node dispatch). Where the layer ran faster than the raw bandwidth allows (caches), the
/// layer's own time per byte is used instead.</para>
/// </remarks>
public sealed record SiloCalibration(double ReadBytesPerSecond, long LayerBytes, long LayerFlopsPerToken, double LayerSecondsBatch1, double LayerSecondsBatch16)
{
    /// <summary>The reference batch of the second measurement.</summary>
    public const int BigBatch = 16;

    /// <summary>Seconds per FLOP of a row's work (0 when the two measurements show none).</summary>
    public double SecondsPerFlop => Math.Max(0, LayerSecondsBatch16 - LayerSecondsBatch1) / ((BigBatch - 1) * (double)Math.Max(1, LayerFlopsPerToken));

    /// <summary>The batch-independent part of the reference layer's step, seconds.</summary>
    private double FixedSeconds => Math.Max(0, LayerSecondsBatch1 - SecondsPerFlop * LayerFlopsPerToken);

    /// <summary>Seconds per weight byte read: the bandwidth's, or the reference layer's own when that is lower.</summary>
    public double SecondsPerByte => LayerBytes <= 0 ? 1 / ReadBytesPerSecond : Math.Min(1 / ReadBytesPerSecond, FixedSeconds / LayerBytes);

    /// <summary>The per-layer cost beyond reading its weights, seconds.</summary>
    public double SecondsPerLayer => Math.Max(0, FixedSeconds - SecondsPerByte * LayerBytes);

    /// <summary>Predicted step time of a stage on this silo, seconds.</summary>
    /// <param name="bytes">Weight bytes the stage reads per step (its layers, and the head on the last stage).</param>
    /// <param name="flopsPerToken">FLOPs the stage does per row.</param>
    /// <param name="layers">Number of decoder layers.</param>
    /// <param name="batch">Rows in the step.</param>
    public double StageSeconds(long bytes, long flopsPerToken, int layers, int batch) =>
        layers * SecondsPerLayer + bytes * SecondsPerByte + (double)batch * flopsPerToken * SecondsPerFlop;

    /// <summary>A relative speed for planners that take one number: reference layer steps per second at batch 1.</summary>
    public double Speed => 1 / LayerSecondsBatch1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first value that is not a positive finite number.</summary>
    public void Validate(string siloId)
    {
        if (!(ReadBytesPerSecond > 0 && double.IsFinite(ReadBytesPerSecond)))
            throw new ArgumentException($"silo '{siloId}' advertises read bandwidth {ReadBytesPerSecond}; it must be positive and finite", nameof(ReadBytesPerSecond));
        if (LayerBytes <= 0 || LayerFlopsPerToken <= 0)
            throw new ArgumentException($"silo '{siloId}' advertises a reference layer of {LayerBytes} bytes and {LayerFlopsPerToken} FLOPs; both must be positive", nameof(LayerBytes));
        if (!(LayerSecondsBatch1 > 0 && double.IsFinite(LayerSecondsBatch1)) || !(LayerSecondsBatch16 > 0 && double.IsFinite(LayerSecondsBatch16)))
            throw new ArgumentException($"silo '{siloId}' advertises layer step times {LayerSecondsBatch1} s and {LayerSecondsBatch16} s; both must be positive and finite", nameof(LayerSecondsBatch1));
    }

    /// <summary>The advertised form: five invariant numbers separated by semicolons (see <see cref="TryParse"/>).</summary>
    public string Format() => string.Join(';',
        ReadBytesPerSecond.ToString("R", CultureInfo.InvariantCulture), LayerBytes.ToString(CultureInfo.InvariantCulture),
        LayerFlopsPerToken.ToString(CultureInfo.InvariantCulture), LayerSecondsBatch1.ToString("R", CultureInfo.InvariantCulture),
        LayerSecondsBatch16.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Reads <see cref="Format"/>'s text; false when it is absent, malformed or not positive.</summary>
    public static bool TryParse(string? text, out SiloCalibration? calibration)
    {
        calibration = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var parts = text.Split(';');
        if (parts.Length != 5) return false;
        const NumberStyles Float = NumberStyles.Float;
        if (!double.TryParse(parts[0], Float, CultureInfo.InvariantCulture, out double bw) ||
            !long.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out long bytes) ||
            !long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long flops) ||
            !double.TryParse(parts[3], Float, CultureInfo.InvariantCulture, out double t1) ||
            !double.TryParse(parts[4], Float, CultureInfo.InvariantCulture, out double t16))
            return false;
        var c = new SiloCalibration(bw, bytes, flops, t1, t16);
        try
        {
            c.Validate("?");
        }
        catch (ArgumentException)
        {
            return false;
        }
        calibration = c;
        return true;
    }

    /// <summary>One line for logs: <c>read 12.3 GB/s, reference layer 1.2 ms at batch 1, 3.4 ms at batch 16</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"read {ReadBytesPerSecond / 1e9:0.0} GB/s, reference layer ({ByteSize.Format(LayerBytes)}) {LayerSecondsBatch1 * 1e3:0.000} ms at batch 1, {LayerSecondsBatch16 * 1e3:0.000} ms at batch {BigBatch}");
}
