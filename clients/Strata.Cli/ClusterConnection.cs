using System.CommandLine;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Strata.Client;

namespace Strata.Cli;

/// <summary>Where a cluster is: Redis membership, or gateways on this machine.</summary>
/// <param name="Redis">Redis "host:port"; null = local gateways.</param>
/// <param name="GatewayPorts">Gateway ports on loopback (used when <paramref name="Redis"/> is null).</param>
/// <param name="ClusterId">Cluster and service id.</param>
public sealed record ClusterTarget(string? Redis, IReadOnlyList<int> GatewayPorts, string ClusterId)
{
    /// <inheritdoc />
    public override string ToString() => Redis is not null
        ? $"Redis {Redis} (cluster id '{ClusterId}')"
        : $"{string.Join(", ", GatewayPorts.Select(p => "127.0.0.1:" + p.ToString(CultureInfo.InvariantCulture)))} (cluster id '{ClusterId}')";
}

/// <summary>The cluster could not be reached: no silo at the gateways, Redis down, or another cluster id.</summary>
public sealed class ClusterUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The flags every cluster command shares: <c>--redis</c>, <c>--gateway-port</c>, <c>--cluster-id</c>.</summary>
internal sealed class ClusterFlags
{
    /// <summary>The gateway port of a silo started with default settings.</summary>
    public const int DefaultGatewayPort = 30000;

    private readonly Option<string?> _redis = new("--redis") { Description = "Redis HOST:PORT holding the cluster's membership (default: gateways on this machine)" };
    private readonly Option<string[]> _gatewayPorts = new("--gateway-port")
    {
        Description = $"Gateway port of a silo on this machine; repeatable or comma-separated (default {DefaultGatewayPort})",
    };
    private readonly Option<string> _clusterId = new("--cluster-id") { Description = "Cluster id", DefaultValueFactory = _ => "strata" };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(_redis);
        cmd.Options.Add(_gatewayPorts);
        cmd.Options.Add(_clusterId);
    }

    /// <summary>Whether any of these flags was given on the command line.</summary>
    public bool AnyGiven(ParseResult parse) => CliFlags.Given(parse, _redis) || CliFlags.Given(parse, _gatewayPorts) || CliFlags.Given(parse, _clusterId);

    /// <summary>The target the flags name; throws <see cref="CliUsageException"/> for bad ports.</summary>
    public ClusterTarget Get(ParseResult parse)
    {
        string? redis = parse.GetValue(_redis);
        string[] given = parse.GetValue(_gatewayPorts) ?? [];
        if (redis is not null && given.Length > 0)
            throw new CliUsageException("--redis and --gateway-port exclude each other: with Redis the client finds the gateways itself");
        if (redis is not null && string.IsNullOrWhiteSpace(redis))
            throw new CliUsageException("--redis is empty: give HOST:PORT");
        var ports = new List<int>();
        foreach (string part in given.SelectMany(g => g.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
                throw new CliUsageException($"--gateway-port '{part}' is not a port (1-65535)");
            ports.Add(port);
        }
        if (ports.Count == 0) ports.Add(DefaultGatewayPort);
        string clusterId = parse.GetValue(_clusterId)!;
        if (string.IsNullOrWhiteSpace(clusterId)) throw new CliUsageException("--cluster-id is empty");
        return new ClusterTarget(redis, ports.Distinct().ToArray(), clusterId);
    }
}

/// <summary>
/// A client connected to a cluster, and the host it runs in. Built here rather than with
/// <see cref="StrataClient.ConnectAsync"/>, which logs every failed gateway attempt with a stack trace and keeps
/// retrying for minutes: a command line should fail at once with one line.
/// </summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private readonly IHost _host;

    private ClusterConnection(IHost host, StrataClient client)
    {
        _host = host;
        Client = client;
    }

    /// <summary>The connected client.</summary>
    public StrataClient Client { get; }

    /// <summary>Connects a client to <paramref name="target"/>; throws <see cref="ClusterUnreachableException"/>
    /// when no silo answers.</summary>
    public static async Task<ClusterConnection> ConnectAsync(ClusterTarget target, CancellationToken cancellation)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Error)
            // A failed start is reported below as one line; the host's own report is a stack trace.
            .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.UseOrleansClient(client =>
        {
            if (target.Redis is string redis) client.UseRedisClustering(redis);
            else client.UseStaticClustering(target.GatewayPorts.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray());
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = target.ClusterId;
                o.ServiceId = target.ClusterId;
            });
            client.UseConnectionRetryFilter(static (_, _) => Task.FromResult(false));
        });
        builder.Services.AddSingleton<IHostLifetime, CommandHostLifetime>();
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            host.Dispose();
            // Orleans throws several types here (connection refused, gateway rejected the cluster id, Redis down);
            // all of them mean the same to a user: nothing usable answered at that address.
            throw new ClusterUnreachableException($"cannot reach the cluster at {target}: is a silo running? ({Describe(e)})", e);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return new ClusterConnection(host, StrataClient.FromClusterClient(host.Services.GetRequiredService<IClusterClient>()));
    }

    // The innermost message is the one that says what happened ("Error: ConnectionRefused"); long ones (Redis adds
    // advice on its own connection strings) are cut to their first sentence.
    private static string Describe(Exception e)
    {
        string message = e.GetBaseException().Message;
        int end = message.Length > 120 ? message.IndexOf(". ", StringComparison.Ordinal) : -1;
        return (end > 0 ? message[..end] : message).TrimEnd('.');
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try { await _host.StopAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or OrleansException) { /* leaving anyway */ }
        finally { _host.Dispose(); }
    }
}

/// <summary>Small helpers over parse results.</summary>
internal static class CliFlags
{
    /// <summary>Whether <paramref name="option"/> was written on the command line (not just defaulted).</summary>
    public static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };
}

/// <summary>
/// A host lifetime that leaves signals alone. The default console lifetime takes Ctrl+C for itself (to stop the host),
/// so the command's cancellation token never fires; hosts inside a command are stopped by the command instead.
/// </summary>
internal sealed class CommandHostLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
