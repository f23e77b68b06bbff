using Orleans.Placement;
using Orleans.Runtime.Placement;
using Strata.Contracts;

namespace Strata.Grains.Placement;

/// <summary>Places a shard grain on the silo named in its key, and nowhere else.</summary>
[Serializable, GenerateSerializer, Immutable, Alias("strata.PinnedShardPlacement")]
public sealed class PinnedShardPlacement : PlacementStrategy
{
    /// <summary>The single instance.</summary>
    public static readonly PinnedShardPlacement Instance = new();
}

/// <summary>Marks a grain class for <see cref="PinnedShardPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class PinnedShardPlacementAttribute() : PlacementAttribute(PinnedShardPlacement.Instance);

/// <summary>
/// Chooses the silo written in the shard key. When that silo is not an active, compatible silo the activation is
/// refused with a <see cref="StrataException"/>: a lost stage is re-planned by the model grain, never silently
/// reloaded on a silo the plan did not choose.
/// </summary>
public sealed class PinnedShardPlacementDirector : IPlacementDirector
{
    /// <inheritdoc />
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string key = target.GrainIdentity.Key.ToString()!;
        string wanted = ShardKeys.Silo(key);
        foreach (var silo in context.GetCompatibleSilos(target))
        {
            if (silo.ToParsableString() == wanted) return Task.FromResult(silo);
        }
        throw new StrataException(ErrorCodes.StageFailed,
            $"shard {key} is pinned to silo {wanted}, which is not active in the cluster; redeploy the model to re-plan its stages");
    }
}
