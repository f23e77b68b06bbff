using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Cluster.Tests;

/// <summary>The 4-layer synthetic model the in-process cluster tests deploy.</summary>
internal static class TinyModel
{
    /// <summary>Its package name in the model store.</summary>
    public const string Package = "tiny4";

    /// <summary>Writes the checkpoint to <c>store/src</c> and imports it as <c>store/tiny4</c>.</summary>
    public static void ImportInto(string store)
    {
        string src = Path.Combine(store, "src");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = 4, Seed = 21 }, src);
        ModelImporter.Import(src, Path.Combine(store, Package));
    }
}
