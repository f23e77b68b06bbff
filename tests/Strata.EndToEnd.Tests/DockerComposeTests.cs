using Strata.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Strata.EndToEnd.Tests;

/// <summary>docker-compose.yml is valid (as Debian's docker-compose v1 reads it) and has the services the README
/// describes. No container is started: this machine has no Docker engine.</summary>
public sealed class DockerComposeTests(ITestOutputHelper output)
{
    [DockerComposeFact]
    public async Task Compose_file_is_valid_and_declares_the_cluster_services()
    {
        string file = Path.Combine(Tools.RepositoryRoot, "docker-compose.yml");
        Assert.True(File.Exists(file), $"{file} is missing");

        var config = await Compose(file, "config");
        Assert.True(config.ExitCode == 0, $"docker-compose config rejected {file}:\n{config.Log}");

        var services = await Compose(file, "config", "--services");
        Assert.True(services.ExitCode == 0, services.Log);
        var names = services.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        foreach (string service in new[] { "redis", "silo-gpu", "silo-cpu", "client" })
            Assert.True(names.Contains(service), $"service '{service}' is missing from {file}; services: {string.Join(", ", names)}");

        var volumes = await Compose(file, "config", "--volumes");
        Assert.True(volumes.ExitCode == 0, volumes.Log);
        Assert.Contains("models", volumes.Out.Split('\n', StringSplitOptions.TrimEntries));

        // The resolved file: every silo and the client reach Redis by its service name, the GPU silo reserves a GPU.
        Assert.Contains("redis:6379", config.Out);
        Assert.Contains("driver: nvidia", config.Out);
        Assert.Contains("- gpu", config.Out);
    }

    private async Task<(int ExitCode, string Out, string Log)> Compose(string file, params string[] args)
    {
        using var process = ChildProcess.Start("docker-compose", Tools.OnPath("docker-compose")!, ["-f", file, .. args], TimeSpan.FromMinutes(2), Path.GetDirectoryName(file));
        int code = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine(process.Log());
        return (code, process.StandardOutput, process.Log());
    }
}
