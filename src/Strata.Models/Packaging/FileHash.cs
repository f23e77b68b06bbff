using System.Security.Cryptography;

namespace Strata.Models.Packaging;

/// <summary>SHA-256 of files, as lower-case hex.</summary>
public static class FileHash
{
    /// <summary>The SHA-256 of the file at <paramref name="path"/>, streamed (files of any size).</summary>
    public static string Sha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
