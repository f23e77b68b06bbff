using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Reference;

/// <summary>An in-memory <see cref="ITensorSource"/> with seeded random weights for a config (tests only).</summary>
internal sealed class MemoryTensorSource : ITensorSource
{
    private readonly Dictionary<string, (TensorInfo Info, float[] Data)> _tensors = [];

    public static MemoryTensorSource Random(LlamaConfig config, int seed)
    {
        var rng = new System.Random(seed);
        var source = new MemoryTensorSource();
        foreach (var t in LlamaTensors.Expected(config))
        {
            var data = new float[t.Shape.Aggregate(1L, (a, b) => a * b)];
            bool isNorm = t.Shape.Length == 1 && t.Name.EndsWith("norm.weight", StringComparison.Ordinal);
            for (int i = 0; i < data.Length; i++)
                data[i] = isNorm ? 1f + 0.1f * (float)(rng.NextDouble() - 0.5) : 0.2f * (float)(rng.NextDouble() - 0.5);
            source.Add(t.Name, t.Shape, data);
        }
        return source;
    }

    public void Add(string name, long[] shape, float[] data) =>
        _tensors[name] = (new TensorInfo(name, TensorDType.F32, shape, "memory", 0, data.Length * 4L), data);

    public IReadOnlyCollection<string> Names => _tensors.Keys;

    public bool TryGet(string name, out TensorInfo info)
    {
        bool found = _tensors.TryGetValue(name, out var t);
        info = t.Info;
        return found;
    }

    public void ReadFloat32(string name, Span<float> destination) => _tensors[name].Data.CopyTo(destination);

    public void ReadRaw(string name, Span<byte> destination) => throw new NotSupportedException();

    public void Dispose()
    {
    }
}
