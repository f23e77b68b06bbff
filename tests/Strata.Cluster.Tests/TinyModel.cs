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

/// <summary>A temporary model store holding <see cref="TinyModel"/>, deleted when disposed (one per test of a class
/// whose tests start clusters of their own).</summary>
internal sealed class TinyModelStore : IDisposable
{
    public TinyModelStore(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"strata-{name}-" + Guid.NewGuid().ToString("N")[..12]);
        TinyModel.ImportInto(Path);
    }

    /// <summary>The store's folder.</summary>
    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }
}
