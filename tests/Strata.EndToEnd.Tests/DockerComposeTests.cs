using Strata.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Strata.EndToEnd.Tests;

/// <summary>docker-compose.yml is valid (as Debian's docker-compose v1 reads it), has the services the README
/// describes, and is locked down: TLS everywhere, a Redis password it refuses to run without, no Redis port on the
/// host, and the admin certificate only where cluster control runs. No container is started: there is no Docker
/// engine here.</summary>
public sealed class DockerComposeTests(ITestOutputHelper output)
{
    [DockerComposeFact]
    public async Task Compose_file_is_valid_and_declares_the_cluster_services()
    {
        string file = Path.Combine(Tools.RepositoryRoot, "docker-compose.yml");
        Assert.True(File.Exists(file), $"{file} is missing");

        var unset = await Compose(file, new Dictionary<string, string>(), "config");
        Assert.True(unset.ExitCode != 0, "the compose file must refuse to run without STRATA_REDIS_PASSWORD");
        Assert.Contains("STRATA_REDIS_PASSWORD", unset.Log);

        var config = await Compose(file, "config");
        Assert.True(config.ExitCode == 0, $"docker-compose config rejected {file}:\n{config.Log}");

        var services = await Compose(file, "config", "--services");
        Assert.True(services.ExitCode == 0, services.Log);
        var names = services.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
        foreach (string service in new[] { "redis", "certs", "silo-gpu", "silo-cpu", "gateway", "client" })
            Assert.True(names.Contains(service), $"service '{service}' is missing from {file}; services: {string.Join(", ", names)}");

        var volumes = await Compose(file, "config", "--volumes");
        Assert.True(volumes.ExitCode == 0, volumes.Log);
        Assert.Contains("models", volumes.Out.Split('\n', StringSplitOptions.TrimEntries));

        // The resolved file: every silo and the client reach Redis by its service name, the GPU silo reserves a GPU.
        Assert.Contains("redis:6379", config.Out);
        Assert.Contains("driver: nvidia", config.Out);
        Assert.Contains("- gpu", config.Out);

        var resolved = Services(config.Out);
        string redis = resolved["redis"];
        Assert.Contains($"- --requirepass\n    - {Password}", redis);
        Assert.Contains("appendonly", redis);
        Assert.DoesNotContain("ports:", redis); // not published on the host
        foreach (string service in new[] { "silo-gpu", "silo-cpu", "gateway" })
        {
            Assert.Contains($"redis:6379,password={Password}", resolved[service]);
            Assert.Contains("- --tls", resolved[service]);
        }
        Assert.Contains("--tls /certs", resolved["client"]);
        Assert.Contains("certs-admin:/certs", resolved["client"]);
        foreach (string service in new[] { "silo-gpu", "silo-cpu", "gateway" })
            Assert.DoesNotContain("certs-admin", resolved[service]);
        Assert.Contains("certs-client:/certs", resolved["gateway"]);
        Assert.Contains(KeyHash, resolved["gateway"]);
    }

    private const string Password = "compose-test-password";
    private const string KeyHash = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

    /// <summary>Each service's block of the resolved file (its lines up to the next service), by name.</summary>
    private static Dictionary<string, string> Services(string resolved)
    {
        var blocks = new Dictionary<string, string>();
        string? name = null;
        var text = new System.Text.StringBuilder();
        bool inServices = false;
        foreach (string line in resolved.Split('\n'))
        {
            if (!line.StartsWith(' ') && line.Length > 0) { Flush(); inServices = line == "services:"; continue; }
            if (!inServices) continue;
            if (line.StartsWith("  ", StringComparison.Ordinal) && !line.StartsWith("   ", StringComparison.Ordinal) && line.TrimEnd().EndsWith(':'))
            {
                Flush();
                name = line.Trim().TrimEnd(':');
                continue;
            }
            text.AppendLine(line);
        }
        Flush();
        return blocks;

        void Flush()
        {
            if (name is not null) blocks[name] = text.ToString().Replace("\r", "", StringComparison.Ordinal);
            name = null;
            text.Clear();
        }
    }

    private Task<(int ExitCode, string Out, string Log)> Compose(string file, params string[] args) =>
        Compose(file, new Dictionary<string, string> { ["STRATA_REDIS_PASSWORD"] = Password, ["STRATA_GATEWAY_KEY_SHA256"] = KeyHash }, args);

    private async Task<(int ExitCode, string Out, string Log)> Compose(string file, Dictionary<string, string> environment, params string[] args)
    {
        // Empty (which ${VAR:?} treats as unset) unless given, so the environment of the test run does not decide it.
        var env = new Dictionary<string, string> { ["STRATA_REDIS_PASSWORD"] = "", ["STRATA_GATEWAY_KEY_SHA256"] = "" };
        foreach (var (key, value) in environment) env[key] = value;
        using var process = ChildProcess.Start("docker-compose", Tools.OnPath("docker-compose")!, ["-f", file, .. args], TimeSpan.FromMinutes(2),
            Path.GetDirectoryName(file), env);
        int code = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine(process.Log());
        return (code, process.StandardOutput, process.Log());
    }
}
