using Strata.Contracts;

namespace Strata.Grains.Control;

/// <summary>The names of the deployed models, in grain storage, so that the gateway can list them
/// (<c>GET /v1/models</c>) after any silo was lost.</summary>
internal sealed class ModelCatalogGrain(
    [PersistentState("catalog", StrataStorage.Name)] IPersistentState<SortedSet<string>> state) : Grain, IModelCatalogGrain
{
    public async Task Add(string model)
    {
        if (state.State.Add(model)) await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>(state.State.ToArray());
}
