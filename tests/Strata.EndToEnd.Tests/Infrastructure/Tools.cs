using System.Reflection;

namespace Strata.EndToEnd.Tests.Infrastructure;

/// <summary>Where the programs the tests start are: the built strata executables, dotnet, and tools on PATH.</summary>
internal static class Tools
{
    private static readonly IReadOnlyDictionary<string, string> Metadata = typeof(Tools).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Where(a => a.Value is not null)
        .ToDictionary(a => a.Key, a => a.Value!, StringComparer.Ordinal);

    /// <summary>The repository root (where docker-compose.yml is), as this test project was built.</summary>
    public static string RepositoryRoot => Metadata["RepositoryRoot"];

    /// <summary>strata-silo.dll of this build (silos/Strata.Silo, built through this project's references).</summary>
    public static string SiloDll => Executable("strata-silo");

    /// <summary>strata.dll of this build (clients/Strata.Cli).</summary>
    public static string CliDll => Executable("strata");

    /// <summary>The dotnet host that runs the test, so the children use the same runtime.</summary>
    public static string Dotnet
    {
        get
        {
            string? host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (host is not null && File.Exists(host)) return host;
            string? self = Environment.ProcessPath;
            if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
            return OnPath("dotnet") ?? "dotnet";
        }
    }

    /// <summary>The full path of <paramref name="name"/> on PATH, or null.</summary>
    public static string? OnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    private static string Executable(string assemblyName)
    {
        // Baked in at build time by the EmbedStrataExecutablePaths target of the .csproj.
        if (!Metadata.TryGetValue("StrataExecutable:" + assemblyName, out string? path))
            throw new InvalidOperationException($"this test assembly does not know where {assemblyName}.dll is: rebuild tests/Strata.EndToEnd.Tests");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} does not exist: build the solution first (./test.sh does)", path);
        return path;
    }
}

/// <summary>A fact that is skipped, with the reason in the test results, when redis-server is not installed.</summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        if (Tools.OnPath("redis-server") is null)
            Skip = "redis-server is not installed: install it (apt-get install redis-server; ./test.sh does when it can) to run the end-to-end cluster tests";
    }
}

/// <summary>A theory that is skipped, with the reason in the test results, when redis-server is not installed.</summary>
public sealed class RedisTheoryAttribute : TheoryAttribute
{
    public RedisTheoryAttribute()
    {
        if (Tools.OnPath("redis-server") is null)
            Skip = "redis-server is not installed: install it (apt-get install redis-server; ./test.sh does when it can) to run the end-to-end cluster tests";
    }
}

/// <summary>A fact that is skipped, with the reason in the test results, when docker-compose (v1) is not installed.</summary>
public sealed class DockerComposeFactAttribute : FactAttribute
{
    public DockerComposeFactAttribute()
    {
        if (Tools.OnPath("docker-compose") is null)
            Skip = "docker-compose is not installed: install it (apt-get install docker-compose; ./test.sh does when it can) to validate docker-compose.yml";
    }
}
