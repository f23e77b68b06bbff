using Strata.Models.Checkpoints;

namespace Strata.Models.Packaging;

/// <summary>A view of another tensor source restricted to some names. It does not own the source:
/// disposing the view leaves the source open.</summary>
internal sealed class TensorSubset(ITensorSource source, IEnumerable<string> names) : ITensorSource
{
    private readonly HashSet<string> _names = new(names, StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _names;

    public bool TryGet(string name, out TensorInfo info)
    {
        if (_names.Contains(name)) return source.TryGet(name, out info);
        info = null!;
        return false;
    }

    public void ReadFloat32(string name, Span<float> destination) => source.ReadFloat32(Check(name), destination);

    public void ReadRaw(string name, Span<byte> destination) => source.ReadRaw(Check(name), destination);

    private string Check(string name) =>
        _names.Contains(name) ? name : throw new KeyNotFoundException($"tensor {name} is not part of this layer range");

    public void Dispose()
    {
    }
}
