using CsCheck;
using Strata.Grains.Stages;
using Strata.Models;
using Strata.Models.Packaging;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// <see cref="ModelPackage.Open"/> (as a deploy calls it, through the model store) on mutated manifests, then opening
/// every weight file as a stage load does. Besides the shared property, an error scrubbed by the store
/// (<see cref="ModelStore.Scrub"/>, what callers see) must not name the silo's own folders.
/// </summary>
public sealed class ManifestFuzzTests(PackageStore package, ITestOutputHelper output) : IClassFixture<PackageStore>
{
    [Fact]
    public void RandomTextOpensOrFailsTyped() =>
        Fuzz.Check(output, "manifest", Gen.String, text => Open(text, verify: false), Typed, cases: 300);

    [Fact]
    public void MutatedManifestsOpenOrFailTyped()
    {
        var gen = Gen.Int.Select(Gen.Bool, (seed, verify) => (JsonMutator.MutateText(package.ValidManifest, seed), verify));
        Fuzz.Check(output, "manifest", gen, c => Open(c.Item1, c.verify), Typed, cases: 500, print: c => ConfigFuzzTests.Clip(c.Item1));
    }

    private void Open(string manifest, bool verify)
    {
        File.WriteAllText(package.ManifestPath, manifest);
        var opened = ModelPackage.Open(package.Store.Resolve("pkg"), verify);
        using var tensors = opened.OpenAll();
    }

    private string? Typed(Exception e)
    {
        if (Fuzz.Only<ModelFormatException>()(e) is { } why) return why;
        string shown = package.Store.Scrub(e.Message);
        return shown.Contains(Path.GetTempPath(), StringComparison.Ordinal) || shown.Contains(package.Root, StringComparison.Ordinal)
            ? $"the scrubbed message still names a silo path: {shown}"
            : null;
    }
}
