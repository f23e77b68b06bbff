namespace Strata.Models.Checkpoints;

/// <summary>Tensors of a set of memory-mapped safetensors files; owns (and disposes) the files. Serves Hugging Face
/// checkpoints and the opened part of a package alike.</summary>
internal sealed class SafetensorsTensorSource : ITensorSource
{
    private readonly IReadOnlyList<SafetensorsFile> _files;
    private readonly Dictionary<string, (SafetensorsFile File, TensorInfo Info)> _tensors;
    private readonly string _where;

    /// <summary>Every tensor of every file.</summary>
    public SafetensorsTensorSource(IReadOnlyList<SafetensorsFile> files, string where)
        : this(files, files.SelectMany(f => f.Tensors.Values.Select(i => (f, i))).ToDictionary(t => t.i.Name, t => t, StringComparer.Ordinal), where)
    {
    }

    /// <summary>The tensors named by <paramref name="tensors"/> (e.g. a shard index's weight map).</summary>
    public SafetensorsTensorSource(IReadOnlyList<SafetensorsFile> files, Dictionary<string, (SafetensorsFile, TensorInfo)> tensors, string where)
    {
        _files = files;
        _tensors = tensors;
        _where = where;
    }

    public IReadOnlyList<SafetensorsFile> Files => _files;

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
        _tensors.TryGetValue(name, out var t) ? t : throw new ModelFormatException(_where, name, "tensor is not in the opened files");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
