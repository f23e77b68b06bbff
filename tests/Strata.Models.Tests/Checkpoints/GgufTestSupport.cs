using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Synthetic;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>GGUF files the tests write themselves, from synthetic checkpoints or stories260K.</summary>
internal static class GgufFiles
{
    /// <summary>A synthetic model whose matrices' rows are whole Q4_K super-blocks (K = 256), with grouped-query attention.</summary>
    public static readonly SyntheticOptions Small = new() { Layers = 2, Hidden = 256, Heads = 4, KvHeads = 2, Intermediate = 256, Vocab = 300 };

    /// <summary>Writes a synthetic checkpoint to <c>dir/src</c> and exports it as <paramref name="type"/>.</summary>
    public static string Synthetic(ScratchDir dir, GgmlType type, SyntheticOptions? options = null, string name = "model")
    {
        string src = dir.Sub(name + "-src");
        if (!Directory.Exists(src)) SyntheticCheckpoint.Write(options ?? SyntheticOptions.Preset("tiny"), src);
        string file = dir.Sub($"{name}-{type}.gguf");
        GgufExporter.Export(src, file, type);
        return file;
    }

    /// <summary>Exports stories260K as <paramref name="type"/>.</summary>
    public static string Stories(ScratchDir dir, GgmlType type)
    {
        string file = dir.Sub($"stories260K-{type}.gguf");
        GgufExporter.Export(TestModels.Stories260K(), file, type);
        return file;
    }

    /// <summary>A copy of <paramref name="file"/> with <paramref name="edit"/> applied to its bytes.</summary>
    public static string Edited(string file, string name, Func<byte[], byte[]> edit)
    {
        string path = Path.Combine(Path.GetDirectoryName(file)!, name);
        File.WriteAllBytes(path, edit(File.ReadAllBytes(file)));
        return path;
    }
}
