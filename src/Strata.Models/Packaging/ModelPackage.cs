using System.Collections.Concurrent;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>
/// A Strata model package: <c>strata-model.json</c> plus one safetensors file per layer, an embedding file,
/// a head file and the tokenizer files. Opening reads the manifest (and checks the small tokenizer and config
/// files); weight files are opened only when a layer range asks for them, and each is checked against the
/// manifest's size and SHA-256 the first time it is opened, so a stage reads and verifies only its own layers.
/// </summary>
public sealed class ModelPackage
{
    private readonly bool _verify;
    private readonly ConcurrentDictionary<string, bool> _verified = new(StringComparer.Ordinal);

    private ModelPackage(string dir, PackageManifest manifest, bool verify)
    {
        Directory = dir;
        Manifest = manifest;
        _verify = verify;
    }

    /// <summary>The package folder.</summary>
    public string Directory { get; }

    /// <summary>The parsed manifest.</summary>
    public PackageManifest Manifest { get; }

    /// <summary>The model's name.</summary>
    public string Name => Manifest.Name;

    /// <summary>The model shape.</summary>
    public LlamaConfig Config => Manifest.Config;

    /// <summary>Element type of the weights.</summary>
    public TensorDType DType => Manifest.DType;

    /// <summary>The per-layer weight files.</summary>
    public IReadOnlyList<PackageLayer> Layers => Manifest.Layers;

    /// <summary>Path of the manifest file.</summary>
    public string ManifestPath => Path.Combine(Directory, PackageManifest.FileName);

    /// <summary>True when <paramref name="dir"/> holds a <c>strata-model.json</c>.</summary>
    public static bool IsPackage(string dir) => File.Exists(Path.Combine(dir, PackageManifest.FileName));

    /// <summary>Reads a package's manifest.</summary>
    /// <param name="packageDir">The package folder.</param>
    /// <param name="verify">Check each file's SHA-256 against the manifest when it is first opened (sizes are always checked).</param>
    public static ModelPackage Open(string packageDir, bool verify = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(packageDir);
        string manifestPath = Path.Combine(packageDir, PackageManifest.FileName);
        if (!File.Exists(manifestPath))
            throw new ModelFormatException(manifestPath, null, "file not found (a Strata model package needs strata-model.json; create one with `strata import`)");
        var manifest = PackageManifest.Parse(File.ReadAllText(manifestPath), manifestPath);
        var package = new ModelPackage(packageDir, manifest, verify);
        foreach (var f in manifest.Files) package.Verify(f);
        return package;
    }

    /// <summary>Full path of a package file.</summary>
    public string PathOf(PackageFile file) => Path.Combine(Directory, file.File.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>
    /// Opens the weights a pipeline stage serves: layers [<paramref name="firstLayer"/>, <paramref name="endLayer"/>),
    /// plus the embedding and/or the final norm and LM head. Only those files are opened and verified. A tied
    /// head needs the embedding matrix, so <paramref name="includeHead"/> also opens <c>embed.safetensors</c> then.
    /// The caller disposes the result.
    /// </summary>
    public ITensorSource OpenTensors(int firstLayer, int endLayer, bool includeEmbedding, bool includeHead)
    {
        TensorSelection.CheckRange(Config, firstLayer, endLayer);
        var q = Manifest.Quant;
        var wanted = new List<(PackageFile File, IReadOnlyList<PackedWeight> Holds)>();
        if (includeEmbedding || (includeHead && PackageTensors.HeadNeedsEmbedding(Config, q)))
            wanted.Add((Manifest.Embedding, PackageTensors.Embedding(Config, DType)));
        for (int i = firstLayer; i < endLayer; i++)
            wanted.Add((Manifest.Layers[i].Entry, PackageTensors.Layer(Config, DType, q, i)));
        if (includeHead)
            wanted.Add((Manifest.Head, PackageTensors.Head(Config, DType, q)));

        var files = new List<SafetensorsFile>();
        try
        {
            foreach (var (entry, holds) in wanted)
                files.Add(OpenWeightFile(entry, holds.SelectMany(w => w.Stored).ToList()));
            return new SafetensorsTensorSource(files, Directory);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Opens every weight file (the whole model). The caller disposes the result.</summary>
    public ITensorSource OpenAll() => OpenTensors(0, Config.NumLayers, includeEmbedding: true, includeHead: true);

    /// <summary>
    /// Checks a package file's size, and its SHA-256 when this package verifies, against the manifest; each file
    /// is hashed at most once per <see cref="ModelPackage"/>.
    /// </summary>
    /// <exception cref="ModelFormatException">The file is missing, truncated or altered.</exception>
    public void Verify(PackageFile entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string path = PathOf(entry);
        if (!File.Exists(path))
            throw new ModelFormatException(path, null, $"file not found; {PackageManifest.FileName} lists it (re-import the model)");
        long length = new FileInfo(path).Length;
        if (length != entry.Bytes)
            throw new ModelFormatException(path, null,
                $"size {length} bytes differs from the {entry.Bytes} bytes in {PackageManifest.FileName}: the file is truncated or was modified (re-import the model)");
        if (!_verify || _verified.ContainsKey(path)) return;
        string actual = FileHash.Sha256(path);
        if (actual != entry.Sha256)
            throw new ModelFormatException(path, null,
                $"sha256 mismatch: expected {entry.Sha256}, got {actual}: the file is corrupt or was modified (re-import the model)");
        _verified[path] = true;
    }

    private SafetensorsFile OpenWeightFile(PackageFile entry, List<StoredTensor> expected)
    {
        Verify(entry);
        string path = PathOf(entry);
        var file = SafetensorsFile.Open(path);
        try
        {
            foreach (var t in expected)
            {
                if (!file.Tensors.TryGetValue(t.Name, out var info))
                    throw new ModelFormatException(path, t.Name, "tensor is missing from this package file");
                if (!info.Shape.SequenceEqual(t.Shape))
                    throw new ModelFormatException(path, t.Name, $"shape {info.ShapeText} does not match [{string.Join(", ", t.Shape)}] implied by the manifest's config");
                if (info.DType != t.DType)
                    throw new ModelFormatException(path, t.Name, $"dtype {info.DType.UserName()} differs from the {t.DType.UserName()} the manifest implies");
            }
            var extra = file.Tensors.Keys.FirstOrDefault(n => !expected.Any(t => t.Name == n));
            if (extra is not null)
                throw new ModelFormatException(path, extra, "unexpected tensor in this package file");
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
