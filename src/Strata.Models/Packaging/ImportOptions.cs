using Strata.Models.Checkpoints;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>Choices of <see cref="ModelImporter.Import"/>.</summary>
public sealed record ImportOptions
{
    /// <summary>Element type of the package's weights; null keeps the source checkpoint's dtype.</summary>
    public TensorDType? DType { get; init; }

    /// <summary>Replace an existing package at the destination. A non-empty folder that is not a Strata package
    /// is never replaced, so a typo cannot delete unrelated files.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The model's name in the manifest; null uses the source folder's name.</summary>
    public string? Name { get; init; }

    /// <summary>Weight-only quantization of the layers' projections (and optionally the head); null stores every
    /// weight in <see cref="DType"/>.</summary>
    public QuantizationScheme? Quantization { get; init; }
}

/// <summary>How far an import has got.</summary>
/// <param name="BytesDone">Weight bytes written to the package so far.</param>
/// <param name="TotalBytes">Weight bytes the package will hold.</param>
/// <param name="CurrentTensor">The tensor being written, or null before the first and after the last.</param>
public readonly record struct ImportProgress(long BytesDone, long TotalBytes, string? CurrentTensor)
{
    /// <summary>Fraction done, 0 to 1.</summary>
    public double Fraction => TotalBytes == 0 ? 1 : (double)BytesDone / TotalBytes;
}
