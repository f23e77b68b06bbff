using System.Runtime.CompilerServices;
using System.Text;
using Strata.Models.Checkpoints;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class ScratchDir : IDisposable
{
    public ScratchDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "strata-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    /// <summary>A path inside the folder (not created).</summary>
    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Real test models from the shared folder, when this machine has them.</summary>
internal static class TestModels
{
    /// <summary>The stories260K folder (models/stories260K in the repository); throws when the checkout lacks it.</summary>
    public static string Stories260K([CallerFilePath] string sourceFile = "") =>
        FindUp(AppContext.BaseDirectory) ?? FindUp(System.IO.Path.GetDirectoryName(sourceFile)) ?? throw new InvalidOperationException("models/stories260K is missing from this checkout: the real-model tests need it (it ships in the repository)");

    private static string? FindUp(string? dir)
    {
        for (; dir is not null; dir = System.IO.Path.GetDirectoryName(dir))
        {
            string candidate = System.IO.Path.Combine(dir, "models", "stories260K");
            if (File.Exists(System.IO.Path.Combine(candidate, "model.safetensors"))) return candidate;
        }
        return null;
    }
}

/// <summary>Writers of deliberately broken safetensors files.</summary>
internal static class BrokenFiles
{
    /// <summary>Writes a file with the given header text (padded to 8 bytes) and <paramref name="dataBytes"/> zero bytes.</summary>
    public static void WriteRaw(string path, string header, int dataBytes)
    {
        var text = Encoding.UTF8.GetBytes(header);
        int padded = (text.Length + 7) / 8 * 8;
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)padded));
        f.Write(text);
        for (int i = text.Length; i < padded; i++) f.WriteByte((byte)' ');
        f.Write(new byte[dataBytes]);
    }

    /// <summary>Rewrites a single-file checkpoint, dropping or reshaping tensors (reshaped ones are zero-filled).</summary>
    public static void Rewrite(string dir, Func<string, bool> keep, Func<string, long[], long[]>? reshape = null)
    {
        string path = System.IO.Path.Combine(dir, HfCheckpoint.SingleFile);
        var writer = new SafetensorsWriter();
        byte[] bytes;
        using (var file = SafetensorsFile.Open(path))
        {
            foreach (var info in file.Tensors.Values.OrderBy(t => t.Offset))
            {
                if (!keep(info.Name)) continue;
                long[] shape = reshape?.Invoke(info.Name, info.Shape) ?? info.Shape;
                var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
                if (shape.SequenceEqual(info.Shape)) TensorReads.ReadFloat32(file, info, data);
                writer.AddFloat32(info.Name, info.DType, shape, data);
            }
            using var ms = new MemoryStream();
            writer.Write(ms);
            bytes = ms.ToArray();
        }
        File.WriteAllBytes(path, bytes);
    }
}
