using System.Diagnostics;
using System.Globalization;
using System.Text;
using Strata.Client;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;
using Xunit.Abstractions;

namespace Strata.EndToEnd.Tests.Infrastructure;

/// <summary>One strata-silo process of a <see cref="ProcessCluster"/>.</summary>
internal sealed record SiloProcess(string Name, int SiloPort, int GatewayPort, int MetricsPort, ChildProcess Process)
{
    /// <summary>Whether a parsable silo address ("127.0.0.1:PORT@GENERATION") is this silo's.</summary>
    public bool Is(string siloAddress) => siloAddress.StartsWith($"127.0.0.1:{SiloPort.ToString(CultureInfo.InvariantCulture)}@", StringComparison.Ordinal);
}

/// <summary>What a finished strata command printed.</summary>
internal sealed record CliResult(string Command, int ExitCode, string Out, string Err, TimeSpan Elapsed)
{
    public override string ToString() =>
        $"`strata {Command}` exited {ExitCode} after {Elapsed.TotalSeconds:F1} s\n--- stdout\n{Out}--- stderr\n{Err}---";
}

/// <summary>
/// A real cluster on this machine: its own redis-server on a free port, a model store in a temporary folder, and
/// strata-silo processes that join through that Redis. Every process it starts is killed on dispose, also when a
/// test fails; <see cref="Logs"/> holds everything they printed.
/// </summary>
internal sealed class ProcessCluster : IAsyncDisposable
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(60);
    /// <summary>No process of a cluster outlives this, even when the test host is killed (see <see cref="ChildProcess.Start"/>).</summary>
    private static readonly TimeSpan MaxLifetime = TimeSpan.FromMinutes(10);
    private readonly ITestOutputHelper _output;
    private readonly List<ChildProcess> _processes = [];
    private readonly List<SiloProcess> _silos = [];

    private ProcessCluster(ITestOutputHelper output, string root)
    {
        _output = output;
        Root = root;
        ClusterId = "e2e-" + Path.GetFileName(root)[^8..];
    }

    /// <summary>Temporary folder: the model store lives in <c>models/</c>.</summary>
    public string Root { get; }

    /// <summary>The silos' model store.</summary>
    public string Store => Path.Combine(Root, "models");

    public string ClusterId { get; }

    /// <summary>"127.0.0.1:PORT" of this cluster's Redis.</summary>
    public string Redis { get; private set; } = "";

    public IReadOnlyList<SiloProcess> Silos => _silos;

    /// <summary>Creates the model store with <paramref name="package"/> (a synthetic tiny model with
    /// <paramref name="layers"/> layers), starts Redis and <paramref name="silos"/> silos, and waits until every silo
    /// has printed its ready line. On any failure everything started so far is stopped.</summary>
    public static async Task<ProcessCluster> StartAsync(ITestOutputHelper output, int silos, string package, int layers)
    {
        var cluster = new ProcessCluster(output, Path.Combine(Path.GetTempPath(), "strata-e2e-" + Guid.NewGuid().ToString("N")[..12]));
        try
        {
            cluster.CreateStore(package, layers);
            await cluster.StartRedisAsync();
            await cluster.StartSilosAsync(silos);
            return cluster;
        }
        catch (Exception e)
        {
            string logs = cluster.Logs();
            await cluster.DisposeAsync();
            throw new InvalidOperationException($"starting the cluster failed: {e.Message}\n{logs}", e);
        }
    }

    private void CreateStore(string package, int layers)
    {
        string src = Path.Combine(Root, "checkpoint");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Layers = layers }, src);
        ModelImporter.Import(src, Path.Combine(Store, package));
    }

    private ChildProcess? _redis;

    private async Task StartRedisAsync(int? port = null)
    {
        port ??= FreePorts.Take(1)[0];
        Redis = $"127.0.0.1:{port.Value.ToString(CultureInfo.InvariantCulture)}";
        // Persistent, as in docker-compose.yml: a restart reads the membership table and the grain state back.
        _redis = Track(ChildProcess.Start("redis", Tools.OnPath("redis-server")!,
            ["--port", port.Value.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", Root, "--loglevel", "notice"], MaxLifetime));
        // redis-server 6 and 7 print this (after a pid and a timestamp) once they accept clients.
        await _redis.WaitForLineContainingAsync("Ready to accept connections", TimeSpan.FromSeconds(20));
    }

    /// <summary>Stops Redis (SIGTERM: it writes its append-only file) and starts it again on the same port after
    /// <paramref name="down"/>.</summary>
    public async Task RestartRedisAsync(TimeSpan down)
    {
        int port = int.Parse(Redis.Split(':')[1], CultureInfo.InvariantCulture);
        _redis!.Terminate();
        await _redis.WaitForExitAsync(TimeSpan.FromSeconds(20));
        await Task.Delay(down);
        await StartRedisAsync(port);
    }

    private async Task StartSilosAsync(int count)
    {
        int[] ports = FreePorts.Take(3 * count);
        for (int i = 0; i < count; i++)
        {
            string name = $"silo-{i + 1}";
            int siloPort = ports[3 * i], gatewayPort = ports[3 * i + 1], metricsPort = ports[3 * i + 2];
            var process = Track(ChildProcess.Start(name, Tools.Dotnet,
            [
                Tools.SiloDll,
                "--redis", Redis, "--cluster-id", ClusterId, "--name", name,
                "--silo-port", siloPort.ToString(CultureInfo.InvariantCulture),
                "--gateway-port", gatewayPort.ToString(CultureInfo.InvariantCulture),
                "--model-store", Store, "--memory", "1GB", "--threads", "1",
                "--metrics-port", metricsPort.ToString(CultureInfo.InvariantCulture),
            ], MaxLifetime, Root));
            _silos.Add(new SiloProcess(name, siloPort, gatewayPort, metricsPort, process));
        }
        await Task.WhenAll(_silos.Select(s => s.Process.WaitForLineAsync("strata-silo ready:", ReadyTimeout)));
    }

    /// <summary>Runs <c>strata ARGS</c> to completion; a command still running after <paramref name="timeout"/> is
    /// killed and reported as a <see cref="TimeoutException"/> carrying everything it printed.</summary>
    public async Task<CliResult> StrataAsync(TimeSpan timeout, params string[] args)
    {
        string command = string.Join(' ', args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"\"{a}\"" : a));
        var clock = Stopwatch.StartNew();
        using var process = ChildProcess.Start("strata " + string.Join(' ', args.TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal))),
            Tools.Dotnet, [Tools.CliDll, .. args], timeout + TimeSpan.FromSeconds(30), Root);
        _processes.Add(process);
        try
        {
            int code = await process.WaitForExitAsync(timeout);
            var result = new CliResult(command, code, process.StandardOutput, process.StandardError, clock.Elapsed);
            _output.WriteLine(result.ToString());
            return result;
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}: `strata {command}`\n{process.Log()}", e);
        }
        finally
        {
            _processes.Remove(process);
        }
    }

    /// <summary>Everything every process of this cluster printed so far.</summary>
    public string Logs()
    {
        var sb = new StringBuilder();
        foreach (var p in _processes.ToArray()) sb.Append(p.Log());
        return sb.ToString();
    }

    private ChildProcess Track(ChildProcess process)
    {
        _processes.Add(process);
        return process;
    }

    public ValueTask DisposeAsync()
    {
        // Silos first (they would otherwise log Redis errors), Redis last; kill, not shut down: nothing is kept.
        foreach (var p in _processes.AsEnumerable().Reverse().ToArray())
        {
            try { p.Kill(); } catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
        try { _output.WriteLine(Logs()); } catch (InvalidOperationException) { /* no test is running any more */ }
        foreach (var p in _processes) p.Dispose();
        _processes.Clear();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return ValueTask.CompletedTask;
    }
}
