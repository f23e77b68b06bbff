using Strata.Contracts;

namespace Strata.Grains.Control;

/// <summary>The silos being drained, in grain storage, so that every model grain's planner leaves them out. Silos
/// that left the cluster are forgotten.</summary>
internal sealed class DrainRegistryGrain(
    [PersistentState("draining", StrataStorage.Name)] IPersistentState<HashSet<string>> state,
    IClusterMembershipService membership) : Grain, IDrainRegistryGrain
{
    /// <summary>The registry's key.</summary>
    public const string Key = "strata";

    public async Task Add(string silo)
    {
        if (!state.State.Add(silo)) return;
        Prune();
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> Get()
    {
        Prune();
        return Task.FromResult<IReadOnlyList<string>>(state.State.ToArray());
    }

    private void Prune()
    {
        var members = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status is SiloStatus.Active or SiloStatus.Joining or SiloStatus.Created or SiloStatus.ShuttingDown or SiloStatus.Stopping)
            .Select(m => m.SiloAddress.ToParsableString()).ToHashSet(StringComparer.Ordinal);
        state.State.RemoveWhere(s => !members.Contains(s));
    }
}
