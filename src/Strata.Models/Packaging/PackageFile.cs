namespace Strata.Models.Packaging;

/// <summary>One file of a model package, as the manifest records it.</summary>
/// <param name="File">Path relative to the package folder, with '/' separators (e.g. <c>layers/layer-00003.safetensors</c>).</param>
/// <param name="Bytes">File size in bytes.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file's bytes.</param>
/// <param name="Parameters">Weight elements the file holds (0 for non-weight files).</param>
public sealed record PackageFile(string File, long Bytes, string Sha256, long Parameters = 0);

/// <summary>The weight file of one decoder layer.</summary>
/// <param name="Index">Layer index (0-based).</param>
/// <param name="Entry">The file.</param>
public sealed record PackageLayer(int Index, PackageFile Entry);

/// <summary>Where a package's weights came from.</summary>
/// <param name="Kind">Source format; <c>huggingface</c> for now.</param>
/// <param name="Name">The source folder's name (not its full path, so imports stay reproducible on other machines).</param>
/// <param name="DType">The source's weight dtype (fp32, fp16, bf16).</param>
/// <param name="Files">The source's weight files.</param>
public sealed record PackageSource(string Kind, string Name, string DType, IReadOnlyList<string> Files)
{
    /// <summary>One line for logs and listings.</summary>
    public override string ToString() => $"{Kind} checkpoint '{Name}' ({DType}, {Files.Count} file(s))";
}
