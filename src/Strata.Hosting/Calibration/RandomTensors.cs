using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Hosting.Calibration;

/// <summary>Seeded random fp32 weights for every tensor a config implies, made when read: calibration runs a real
/// layer graph without a model on disk. The values are small so activations stay finite through the layer.</summary>
internal sealed class RandomTensors : ITensorSource
{
    private readonly Dictionary<string, TensorInfo> _tensors;
    private readonly int _seed;

    public RandomTensors(LlamaConfig config, int seed)
    {
        _seed = seed;
        _tensors = LlamaTensors.Expected(config).ToDictionary(
            t => t.Name, t => new TensorInfo(t.Name, TensorDType.F32, t.Shape, "calibration", 0, t.Shape.Aggregate(4L, (a, b) => a * b)),
            StringComparer.Ordinal);
    }

    public IReadOnlyCollection<string> Names => _tensors.Keys;

    public bool TryGet(string name, out TensorInfo info) => _tensors.TryGetValue(name, out info!);

    public void ReadFloat32(string name, Span<float> destination)
    {
        // A seed per tensor from its name (string hashes differ between processes).
        uint h = 2166136261;
        foreach (char c in name) h = (h ^ c) * 16777619;
        var rng = new Random(_seed ^ (int)h);
        bool norm = name.EndsWith("norm.weight", StringComparison.Ordinal);
        for (int i = 0; i < destination.Length; i++)
            destination[i] = norm ? 1f : 0.04f * (float)(rng.NextDouble() - 0.5);
    }

    public void ReadRaw(string name, Span<byte> destination) =>
        ReadFloat32(name, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(destination));

    public void Dispose()
    {
    }
}
