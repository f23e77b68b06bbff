using System.Runtime.CompilerServices;

namespace Strata.Engine.Tests.Reference;

/// <summary>Finds the test models by walking up from the test binaries (models/stories260K ships in the repository).</summary>
internal static class TestModels
{
    /// <summary>The stories260K folder; throws when the checkout lacks it (no test passes without the model).</summary>
    public static string Stories260K => Find(Path.Combine("models", "stories260K")) ?? throw new InvalidOperationException("models/stories260K is missing from this checkout: the real-model tests need it (it ships in the repository)");

    /// <summary>
    /// The first <c>dir/relative</c> holding a config.json, walking up from the test binaries and then from
    /// this source file (builds with <c>--artifacts-path</c> put the binaries outside the checkout).
    /// </summary>
    public static string? Find(string relative, [CallerFilePath] string sourceFile = "")
    {
        foreach (string? start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) })
        {
            for (var dir = string.IsNullOrEmpty(start) ? null : new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relative);
                if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
            }
        }
        return null;
    }
}
