using Strata.Client;

namespace Strata.LoadTest;

/// <summary>A client connected to a cluster for one run; fails at once with one line when nothing answers.</summary>
internal sealed class Connection : IAsyncDisposable
{
    private Connection(StrataClient client) => Client = client;

    public StrataClient Client { get; }

    public static async Task<Connection> ConnectAsync(string? redis, IReadOnlyList<int>? gatewayPorts, string clusterId, CancellationToken ct)
    {
        try
        {
            return new(await StrataClient.ConnectAsync(redis, redis is null ? gatewayPorts?.ToArray() : null, clusterId, ct));
        }
        catch (ClusterUnreachableException e)
        {
            throw new InvalidOperationException(e.Message, e);
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}
