using Strata.Models.Checkpoints;

namespace Strata.Models.Packaging;

/// <summary>The tensors of some of a package's weight files, memory-mapped; owns (and disposes) the files.</summary>
internal sealed class PackageTensorSource : ITensorSource
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> _tensors = new(StringComparer.Ordinal);

    public PackageTensorSource(List<SafetensorsFile> files)
    {
        _files = files;
        foreach (var f in files)
            foreach (var (name, info) in f.Tensors) _tensors[name] = (f, info);
    }

    public IReadOnlyCollection<string> Names => _tensors.Keys;

    public bool TryGet(string name, out TensorInfo info)
    {
        if (_tensors.TryGetValue(name, out var t))
        {
            info = t.Info;
            return true;
        }
        info = null!;
        return false;
    }

    public void ReadFloat32(string name, Span<float> destination)
    {
        var (file, info) = Lookup(name);
        TensorReads.ReadFloat32(file, info, destination);
    }

    public void ReadRaw(string name, Span<byte> destination)
    {
        var (file, info) = Lookup(name);
        TensorReads.ReadRaw(file, info, destination);
    }

    private (SafetensorsFile, TensorInfo) Lookup(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"tensor {name} is not in the opened part of the package");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
