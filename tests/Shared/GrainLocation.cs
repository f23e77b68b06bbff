namespace Strata.Testing;

/// <summary>
/// Where a grain is active, asked of every silo's catalog. <c>IManagementGrain.GetActivationAddress</c> answers
/// from its silo's directory cache first, which can still name an activation that was deactivated or moved; a test that
/// waits for a deactivation or follows a grain to its new silo needs the silos' own answer.
/// </summary>
internal static class GrainLocation
{
    /// <summary>The silo (as <see cref="SiloAddress.ToParsableString"/>) that holds an activation of
    /// <paramref name="grain"/>, or null when none does.</summary>
    public static async Task<string?> SiloOf(IGrainFactory grains, IAddressable grain)
    {
        var id = grain.GetGrainId();
        var activations = await grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return activations.FirstOrDefault(a => a.GrainId == id)?.SiloAddress.ToParsableString();
    }
}
