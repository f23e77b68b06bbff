using System.Globalization;

namespace Strata.Grains.Placement;

/// <summary>
/// Shard grain keys: <c>{model}#{stage}#{replica}#{version}#{silo}</c>: the stage, the replica number within it, the
/// plan version that placed the shard, and the parsable address of the silo the plan chose (it contains no '#').
/// Putting the silo in the key makes placement a pure function of the key: a shard can only ever activate there, and
/// a shard whose silo is gone cannot be activated anywhere else. The version keeps a re-placed stage apart from the
/// one it replaces.
/// </summary>
public static class ShardKeys
{
    /// <summary>Builds a shard key.</summary>
    public static string Format(string model, int stage, long version, string silo, int replica = 0) =>
        string.Create(CultureInfo.InvariantCulture, $"{model}#{stage}#{replica}#{version}#{silo}");

    /// <summary>The silo part of a shard key.</summary>
    public static string Silo(string key)
    {
        int at = key.LastIndexOf('#');
        if (at < 0) throw new ArgumentException($"'{key}' is not a shard key (model#stage#replica#version#silo)", nameof(key));
        return key[(at + 1)..];
    }
}
