using System.Text.Json.Nodes;

namespace Strata.Cli.Tests;

/// <summary>Runs the strata command line in-process and captures what it prints.</summary>
internal static class Cli
{
    public sealed record Result(int ExitCode, string Out, string Err)
    {
        public JsonObject Json() => JsonNode.Parse(Out)!.AsObject();
    }

    public static Result Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.RunAsync(args, stdout, stderr).GetAwaiter().GetResult();
        return new Result(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Asserts a user error: exit code 2, every fragment in the message, no stack trace.</summary>
    public static void AssertUserError(Result r, params string[] fragments)
    {
        Assert.True(r.ExitCode == CliApp.UserError, $"exit code {r.ExitCode}, stderr: {r.Err}");
        foreach (var f in fragments) Assert.Contains(f, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
        Assert.DoesNotContain("Exception", r.Err);
    }
}

/// <summary>A temporary folder removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "strata-test-" + Guid.NewGuid().ToString("N")[..12]);

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Finds models/stories260K (it ships in the repository) by walking up from the test binaries; throws when absent.</summary>
internal static class SharedModels
{
    public static string Stories260K
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = System.IO.Path.Combine(dir.FullName, "models", "stories260K");
                if (File.Exists(System.IO.Path.Combine(candidate, "config.json"))) return candidate;
            }
            throw new InvalidOperationException("models/stories260K is missing from this checkout: the real-model tests need it (it ships in the repository)");
        }
    }
}
