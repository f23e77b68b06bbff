using System.Buffers.Binary;
using System.Text;
using Strata.Models;
using Strata.Models.Checkpoints;

namespace Strata.Fuzz.Tests;

/// <summary>Crashes the safetensors fuzzing found, each kept as a plain case.</summary>
public sealed class SafetensorsRegressionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string header, int dataBytes, ulong? headerLength = null)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength ?? (ulong)json.Length);
        json.CopyTo(file, 8);
        string path = _dir.File("t.safetensors");
        File.WriteAllBytes(path, file);
        return path;
    }

    private static ModelFormatException Refused(string path)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(path, e.File);
        return e;
    }

    [Fact]
    public void DuplicateFieldIsAFormatError()
    {
        // Was ArgumentException ("An item with the same key has already been added") from JsonObject.
        var e = Refused(Write("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"data_offsets":[0,4]}}""", 4));
        Assert.Contains("data_offsets", e.Message);
    }

    [Fact]
    public void EmptyHeaderIsAFormatError()
    {
        // Was ArgumentOutOfRangeException from the view accessor: an 8-byte file whose header length is 0.
        var e = Refused(Write("", 0));
        Assert.Contains("header length 0", e.Message);
    }

    [Fact]
    public void HeaderLongerThanTheFormatAllowsIsAFormatError()
    {
        // A header length past int.MaxValue that still fits the (sparse) file was an OverflowException from new byte[(int)n].
        string path = Write("{}", 0, headerLength: 3UL << 30);
        using (var f = File.OpenWrite(path)) f.SetLength((3L << 30) + 16);
        var e = Refused(path);
        Assert.Contains("outside [2, 100000000]", e.Message);
    }
}
