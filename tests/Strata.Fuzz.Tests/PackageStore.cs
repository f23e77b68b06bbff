using Strata.Grains.Stages;
using Strata.Models.Packaging;

namespace Strata.Fuzz.Tests;

/// <summary>A model store holding stories260K imported as a package, shared by the manifest cases.</summary>
public sealed class PackageStore : IDisposable
{
    private readonly TempDir _dir = new();

    public PackageStore()
    {
        Root = Path.Combine(_dir.Path, "store");
        ModelImporter.Import(Seeds.ModelDir, Path.Combine(Root, "pkg"));
        ValidManifest = File.ReadAllText(ManifestPath);
        Store = new ModelStore(Root);
    }

    public string Root { get; }
    public ModelStore Store { get; }
    public string ValidManifest { get; }
    public string ManifestPath => Path.Combine(Root, "pkg", PackageManifest.FileName);

    public void Dispose() => _dir.Dispose();
}
