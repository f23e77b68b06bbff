namespace Strata.Models.Checkpoints;

/// <summary>Chunked reads of mapped tensors (a tensor may exceed the 2 GiB a span can address).</summary>
public static class TensorReads
{
    private const int ChunkElements = 1 << 24;

    /// <summary>Reads a tensor of <paramref name="file"/> converted to float32.</summary>
    public static void ReadFloat32(SafetensorsFile file, TensorInfo info, Span<float> destination)
    {
        if (destination.Length != info.ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} elements, tensor {info.Name} has {info.ElementCount}", nameof(destination));
        int size = info.DType.Size();
        for (long done = 0; done < destination.Length; done += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, destination.Length - done);
            TensorDTypes.ToFloat32(info.DType, file.Bytes(info, done * size, n * size), destination.Slice((int)done, n));
        }
    }

    /// <summary>Copies a tensor's stored bytes.</summary>
    public static void ReadRaw(SafetensorsFile file, TensorInfo info, Span<byte> destination)
    {
        if (destination.Length != info.ByteLength)
            throw new ArgumentException($"destination holds {destination.Length} bytes, tensor {info.Name} has {info.ByteLength}", nameof(destination));
        const int chunk = 1 << 26;
        for (long done = 0; done < destination.Length; done += chunk)
        {
            int n = (int)Math.Min(chunk, destination.Length - done);
            file.Bytes(info, done, n).CopyTo(destination.Slice((int)done, n));
        }
    }
}
