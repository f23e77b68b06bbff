using Strata.Models.Checkpoints;

namespace Strata.Models.Tests.Checkpoints;

public class SafetensorsWriterTests
{
    [Fact]
    public void Written_file_reads_back_with_aligned_data_and_metadata()
    {
        using var dir = new ScratchDir();
        string path = dir.Sub("t.safetensors");
        var a = Enumerable.Range(0, 6).Select(i => i * 0.5f - 1f).ToArray();
        var b = new float[] { 1.5f, -2.25f, 3f };
        var writer = new SafetensorsWriter(new Dictionary<string, string> { ["format"] = "pt" });
        writer.AddFloat32("a", TensorDType.F32, [2, 3], a);
        writer.AddFloat32("b.bias", TensorDType.BF16, [3], b);
        writer.AddFloat32("c", TensorDType.F16, [3], b);
        writer.Add("empty", TensorDType.F32, [0, 4], (_, _) => throw new InvalidOperationException("no bytes to fill"));
        writer.Write(path);

        var bytes = File.ReadAllBytes(path);
        ulong headerLen = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0UL, (8 + headerLen) % 8);
        Assert.Equal(8 + (long)headerLen + 24 + 6 + 6, bytes.Length);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(4, file.Tensors.Count);
        Assert.Equal(a, Read(file, "a"));
        Assert.Equal(b, Read(file, "b.bias"));
        Assert.Equal(b, Read(file, "c"));
        Assert.Equal(TensorDType.BF16, file.Tensors["b.bias"].DType);
        Assert.Equal([0L, 4L], file.Tensors["empty"].Shape);
    }

    [Fact]
    public void Large_tensors_are_filled_in_ordered_chunks()
    {
        using var dir = new ScratchDir();
        string path = dir.Sub("big.safetensors");
        long n = SafetensorsWriter.ChunkBytes / 4 * 2 + 123; // three chunks of float32
        var offsets = new List<long>();
        var writer = new SafetensorsWriter();
        writer.AddFloat32("x", TensorDType.F32, [n], (offset, dest) =>
        {
            offsets.Add(offset);
            for (int i = 0; i < dest.Length; i++) dest[i] = offset + i;
        });
        long written = 0;
        writer.Write(path, (_, bytes) => written += bytes);

        Assert.Equal([0L, SafetensorsWriter.ChunkBytes / 4, SafetensorsWriter.ChunkBytes / 2], offsets);
        Assert.Equal(n * 4, written);
        using var file = SafetensorsFile.Open(path);
        var values = Read(file, "x");
        Assert.Equal(n - 1, values[^1]);
        Assert.Equal(777f, values[777]);
    }

    [Fact]
    public void Duplicate_names_are_refused()
    {
        var writer = new SafetensorsWriter();
        writer.AddFloat32("a", TensorDType.F32, [1], [1f]);
        Assert.Throws<ArgumentException>(() => writer.AddFloat32("a", TensorDType.F32, [1], [1f]));
        Assert.Throws<ArgumentException>(() => writer.AddFloat32("b", TensorDType.F32, [2], [1f]));
    }

    private static float[] Read(SafetensorsFile file, string name)
    {
        var info = file.Tensors[name];
        var data = new float[info.ElementCount];
        TensorReads.ReadFloat32(file, info, data);
        return data;
    }
}
