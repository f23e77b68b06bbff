using System.CommandLine;
using System.Globalization;
using Strata.Client;
using Strata.Contracts.Security;

namespace Strata.Cli;

/// <summary>Where a cluster is: Redis membership, or gateways on this machine.</summary>
/// <param name="Redis">Redis "host:port"; null = local gateways.</param>
/// <param name="GatewayPorts">Gateway ports on loopback (used when <paramref name="Redis"/> is null).</param>
/// <param name="ClusterId">Cluster and service id.</param>
/// <param name="Tls">The cluster's certificate folder when it uses mutual TLS (<c>strata certs create</c>).</param>
public sealed record ClusterTarget(string? Redis, IReadOnlyList<int> GatewayPorts, string ClusterId, string? Tls = null)
{
    /// <inheritdoc />
    public override string ToString() => Redis is not null
        ? $"Redis {Redis} (cluster id '{ClusterId}')"
        : $"{string.Join(", ", GatewayPorts.Select(p => "127.0.0.1:" + p.ToString(CultureInfo.InvariantCulture)))} (cluster id '{ClusterId}')";
}

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
    private readonly Option<string?> _tls = new("--tls")
    {
        Description = "The cluster's certificate folder (strata certs create) when its silos use TLS: connect with admin.pfx, or client.pfx when there is none",
    };

    public void AddTo(Command cmd)
    {
        cmd.Options.Add(_redis);
        cmd.Options.Add(_gatewayPorts);
        cmd.Options.Add(_clusterId);
        cmd.Options.Add(_tls);
    }

    /// <summary>Whether any of these flags was given on the command line.</summary>
    public bool AnyGiven(ParseResult parse) => CliFlags.Given(parse, _redis) || CliFlags.Given(parse, _gatewayPorts) || CliFlags.Given(parse, _clusterId) || CliFlags.Given(parse, _tls);

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
        string? tls = parse.GetValue(_tls);
        if (tls is not null && !Directory.Exists(tls)) throw new CliUsageException($"--tls {tls}: no such folder (strata certs create {tls} makes one)");
        return new ClusterTarget(redis, ports.Distinct().ToArray(), clusterId, tls);
    }
}

/// <summary>A client connected to a cluster for one command (fails at once with one line when nothing answers).</summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private ClusterConnection(StrataClient client) => Client = client;

    /// <summary>The connected client.</summary>
    public StrataClient Client { get; }

    /// <summary>Connects a client to <paramref name="target"/>; throws <see cref="ClusterUnreachableException"/>
    /// when no silo answers. With TLS the client presents the certificate of <paramref name="role"/> (default: the
    /// admin's when the folder has it, else the client's).</summary>
    public static async Task<ClusterConnection> ConnectAsync(ClusterTarget target, CancellationToken cancellation, ClusterRole? role = null)
    {
        ClusterTls? tls = null;
        if (target.Tls is { } dir)
        {
            role ??= File.Exists(Path.Combine(dir, ClusterTls.FileOf(ClusterRole.Admin))) ? ClusterRole.Admin : ClusterRole.Client;
            tls = ClusterTls.Load(dir, role.Value);
        }
        return new(await StrataClient.ConnectAsync(target.Redis, target.Redis is null ? target.GatewayPorts.ToArray() : null, target.ClusterId, tls, cancellation));
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Client.DisposeAsync();
}

/// <summary>Small helpers over parse results.</summary>
internal static class CliFlags
{
    /// <summary>Whether <paramref name="option"/> was written on the command line (not just defaulted).</summary>
    public static bool Given(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };
}
