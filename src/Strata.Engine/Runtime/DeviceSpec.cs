using System.Globalization;

namespace Strata.Engine.Runtime;

/// <summary>The device a stage runs on: <c>cpu</c>, or <c>cuda</c> / <c>cuda:N</c>.</summary>
/// <param name="Kind">"cpu" or "cuda".</param>
/// <param name="Index">CUDA device ordinal (0 for the CPU).</param>
public sealed record DeviceSpec(string Kind, int Index)
{
    /// <summary>The CPU.</summary>
    public static readonly DeviceSpec Cpu = new("cpu", 0);

    /// <summary>Whether this is a CUDA device.</summary>
    public bool IsCuda => Kind == "cuda";

    /// <summary>Parses <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public static DeviceSpec Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return Cpu;
        if (t == "cuda") return new("cuda", 0);
        if (t.StartsWith("cuda:", StringComparison.Ordinal) &&
            int.TryParse(t.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out int i))
            return new("cuda", i);
        throw new FormatException($"device '{text}' is not valid: use cpu, cuda or cuda:N");
    }

    /// <inheritdoc />
    public override string ToString() => IsCuda ? $"cuda:{Index}" : "cpu";
}
