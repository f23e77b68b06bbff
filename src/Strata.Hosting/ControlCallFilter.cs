using Orleans.Configuration;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Contracts.Security;

namespace Strata.Hosting;

/// <summary>
/// With mutual TLS on, the silo refuses control calls from cluster clients that do not prove an administrator
/// (<see cref="ControlToken"/>): deploy, scale, drain and repair of models, the drain of a silo, the catalog, and
/// every call to a shard (only session and model grains drive shards). Calls from grains pass: their token, if any,
/// came with the call that caused them, and they run code of the silos themselves.
/// </summary>
internal sealed class ControlCallFilter(ClusterTls tls, IOptions<ClusterOptions> cluster, TimeProvider clock) : IIncomingGrainCallFilter
{
    private static readonly HashSet<string> ModelControl = new(StringComparer.Ordinal)
    {
        nameof(IModelGrain.Deploy), nameof(IModelGrain.Scale), nameof(IModelGrain.Drain), nameof(IModelGrain.ReportLost),
    };

    public Task Invoke(IIncomingGrainCallContext context)
    {
        // A call with no grain behind it (a client, or code of a silo outside any grain) must carry the proof.
        if (IsControl(context) && !FromGrain(context.SourceId))
        {
            if (!ControlToken.Verify(tls, cluster.Value.ClusterId, RequestContext.Get(ControlToken.Key) as string, clock.GetUtcNow()))
                throw new StrataException(ErrorCodes.Forbidden,
                    $"{context.InterfaceName.Split('.')[^1]}.{context.MethodName} is cluster control: connect with the admin certificate (--tls DIR with admin.pfx)");
        }
        return context.Invoke();
    }

    private static bool FromGrain(GrainId? source) => source is { IsDefault: false } id && !id.IsClient();

    private static bool IsControl(IIncomingGrainCallContext context)
    {
        var type = context.InterfaceMethod?.DeclaringType;
        return type == typeof(IShardGrain) || type == typeof(ISiloControlGrain) || type == typeof(IDrainRegistryGrain)
               || type == typeof(IModelCatalogGrain) && context.MethodName == nameof(IModelCatalogGrain.Add)
               || type == typeof(IModelGrain) && ModelControl.Contains(context.MethodName)
               || type == typeof(ISessionGrain) && context.MethodName == nameof(ISessionGrain.Move);
    }
}
