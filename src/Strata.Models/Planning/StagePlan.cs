using System.Globalization;
using System.Text;

namespace Strata.Models.Planning;

/// <summary>A model cut into stages, in chain order. Two plans are equal when their stages are.</summary>
/// <param name="Stages">The stages, first to last; together they cover every layer once, in order.</param>
public sealed record StagePlan(IReadOnlyList<PlannedStage> Stages)
{
    /// <summary>Number of decoder layers the plan covers.</summary>
    public int LayerCount => Stages.Count == 0 ? 0 : Stages[^1].EndLayer;

    /// <summary>The distinct silos the plan uses, in order of first use.</summary>
    public IReadOnlyList<string> Silos => Stages.Select(s => s.SiloId).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>Memory the plan needs on <paramref name="siloId"/>: the sum over its stages there.</summary>
    public long BytesOn(string siloId) => Stages.Where(s => s.SiloId == siloId).Sum(s => s.TotalBytes);

    /// <summary>What the plan's step should take, when every silo it uses advertised a calibration; else null.</summary>
    public PlanPrediction? Prediction { get; init; }

    /// <summary>A few lines for logs and the command line: a summary, then one line per stage.</summary>
    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"{Stages.Count} stage(s) over {LayerCount} layer(s) on {Silos.Count} silo(s): weights {ByteSize.Format(Stages.Sum(s => s.WeightBytes))} + KV {ByteSize.Format(Stages.Sum(s => s.KvBytes))}");
        for (int i = 0; i < Stages.Count; i++)
        {
            sb.Append("\n  ").Append(Stages[i]);
            if (Prediction is { } p) sb.Append(CultureInfo.InvariantCulture, $", {p.StageSeconds[i] * 1e3:0.00} ms a step");
        }
        if (Prediction is { } prediction) sb.Append("\n  ").Append(prediction);
        return sb.ToString();
    }

    /// <inheritdoc cref="Describe"/>
    public override string ToString() => Describe();

    /// <summary>Plans are equal when they have the same stages in the same order.</summary>
    public bool Equals(StagePlan? other) => other is not null && Stages.SequenceEqual(other.Stages);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var s in Stages) h.Add(s);
        return h.ToHashCode();
    }
}
