using System.Runtime.CompilerServices;

namespace Strata.Models.Tests.Tokenization;

/// <summary>Locates shared test models and makes scratch folders for tokenizer tests.</summary>
internal static class TestModels
{
    /// <summary>
    /// The stories260K folder (<c>models/stories260K</c>, shipped in the repository); throws when the checkout lacks
    /// it, so that no test passes without the model. Searched upward from the test binaries and, since an
    /// --artifacts-path build puts those outside the repo, from this source file too.
    /// </summary>
    public static string Stories260K([CallerFilePath] string sourceFile = "")
    {
        foreach (string? start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile), Environment.CurrentDirectory })
        {
            for (var dir = start is null ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "models", "stories260K");
                if (File.Exists(Path.Combine(candidate, "tokenizer.json"))) return candidate;
            }
        }
        throw new InvalidOperationException("models/stories260K is missing from this checkout: the real-model tests need it (it ships in the repository)");
    }

    /// <summary>A new empty folder under the temp directory; delete it with <see cref="TempDir.Dispose"/>.</summary>
    public static TempDir NewTempDir() => new();
}

internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "strata-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        string file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, content);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder must not fail a test.
        }
    }
}
