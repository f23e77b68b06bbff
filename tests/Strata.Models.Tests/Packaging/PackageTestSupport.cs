using Strata.Models.Checkpoints;

namespace Strata.Models.Tests.Packaging;

internal static class PackageAssert
{
    /// <summary>Every file under two folders, by relative path, is byte-identical.</summary>
    public static void SameTree(string a, string b)
    {
        var fa = Files(a);
        Assert.Equal(fa, Files(b));
        foreach (var f in fa) Assert.True(File.ReadAllBytes(Path.Combine(a, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, f))), f);
    }

    public static List<string> Files(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal).ToList();

    /// <summary>The stored bytes of a tensor.</summary>
    public static byte[] Raw(ITensorSource s, string name)
    {
        Assert.True(s.TryGet(name, out var info), name);
        var bytes = new byte[info.ByteLength];
        s.ReadRaw(name, bytes);
        return bytes;
    }

    /// <summary>Flips one byte in the middle of a file.</summary>
    public static void FlipByte(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2 + 3] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
    }
}
