namespace Strata.Models.Checkpoints;

/// <summary>
/// Read access to named weight tensors: a Hugging Face checkpoint folder or a Strata model package.
/// Implementations are memory-mapped and thread-safe for reads.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>Every tensor name this source holds.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>Looks a tensor up without reading it.</summary>
    bool TryGet(string name, out TensorInfo info);

    /// <summary>Reads a whole tensor, converted to float32, into <paramref name="destination"/>
    /// (whose length must equal the element count).</summary>
    void ReadFloat32(string name, Span<float> destination);

    /// <summary>Copies the stored bytes of a tensor, unconverted.</summary>
    void ReadRaw(string name, Span<byte> destination);
}

/// <summary>Conveniences over <see cref="ITensorSource"/>.</summary>
public static class TensorSourceExtensions
{
    /// <summary>Looks a tensor up; throws <see cref="ModelFormatException"/> naming it when missing.</summary>
    public static TensorInfo Get(this ITensorSource source, string name, string where) =>
        source.TryGet(name, out var info) ? info : throw new ModelFormatException(where, name, "tensor is missing");

    /// <summary>Reads a whole tensor as a new float32 array.</summary>
    public static float[] ReadFloat32(this ITensorSource source, string name)
    {
        if (!source.TryGet(name, out var info))
            throw new KeyNotFoundException($"tensor {name} is missing");
        var data = new float[checked((int)info.ElementCount)];
        source.ReadFloat32(name, data);
        return data;
    }
}
