using Strata.Models;
using Strata.Models.Packaging;

namespace Strata.Fuzz.Tests;

/// <summary>Crashes the manifest fuzzing found, each kept as a plain case.</summary>
public sealed class ManifestRegressionTests(PackageStore package) : IClassFixture<PackageStore>
{
    private ModelFormatException Refused(string json)
    {
        var e = Assert.Throws<ModelFormatException>(() => PackageManifest.Parse(json, "pkg/strata-model.json"));
        Assert.Equal("pkg/strata-model.json", e.File);
        return e;
    }

    [Fact]
    public void DuplicateFieldIsAFormatError()
    {
        // Was ArgumentException ("An item with the same key has already been added") from JsonObject.
        string json = package.ValidManifest.Replace("\"dtype\":", "\"dtype\": \"fp32\", \"dtype\":", StringComparison.Ordinal);
        Assert.Contains("dtype", Refused(json).Message);
    }

    [Fact]
    public void LoneSurrogateInAStringIsAFormatError()
    {
        // Was InvalidOperationException ("incomplete UTF-16 JSON text") from the lazy string read.
        string json = package.ValidManifest.Replace("\"fp32\"", "\"\\ud800\"", StringComparison.Ordinal);
        Assert.Contains("not valid Unicode", Refused(json).Message);
    }

    [Fact]
    public void LoneSurrogateInAFieldNameIsAFormatError()
    {
        string json = package.ValidManifest.Replace("\"parameter_count\"", "\"\\udc00\"", StringComparison.Ordinal);
        Assert.Contains("not valid Unicode", Refused(json).Message);
    }
}
