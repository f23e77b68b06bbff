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

    [Fact]
    public void ShapeWhoseElementCountOverflowsIsAFormatError()
    {
        // Was OverflowException from the checked product of the shape.
        var e = Refused(Write("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", 4));
        Assert.Contains("shape [4294967296, 4294967296] of F32 needs more bytes", e.Message);
    }

    [Fact]
    public void ShapeWhoseByteCountWrapsToTheOffsetsIsRefused()
    {
        // 2^62 F32 elements are 2^64 bytes, which wrapped to 0 and matched empty offsets: the tensor was accepted.
        var e = Refused(Write("""{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}""", 4));
        Assert.Contains("needs more bytes", e.Message);
    }

    [Fact]
    public void NegativeBeginOffsetIsRefused()
    {
        // Was accepted: the tensor's bytes started inside the header.
        var e = Refused(Write("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", 8));
        Assert.Contains("0 <= begin <= end", e.Message);
    }

    [Fact]
    public void EndOffsetThatOverflowsThePositionIsRefused()
    {
        // Was accepted: header end + offset wrapped negative and passed the end-of-file check, leaving a pointer
        // far outside the mapped file.
        var e = Refused(Write("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775799,9223372036854775807]}}""", 8));
        Assert.Contains("past the end of the file", e.Message);
    }

    [Fact]
    public void LoneSurrogateEscapeIsAFormatError()
    {
        // Was InvalidOperationException ("incomplete UTF-16 JSON text") when the name was read.
        var e = Refused(Write("""{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4));
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void InvalidUtf8InAStringIsAFormatError()
    {
        // Was InvalidOperationException ("Cannot transcode invalid UTF-8") when the dtype was read.
        string path = Write("""{"a":{"dtype":"F3?","shape":[1],"data_offsets":[0,4]}}""", 4);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[Array.IndexOf(bytes, (byte)'?')] = 0xFF;
        File.WriteAllBytes(path, bytes);
        Assert.Contains("not valid Unicode", Refused(path).Message);
    }
}
