using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using CsCheck;
using Strata.Models;
using Strata.Models.Checkpoints;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// <see cref="SafetensorsFile.Open"/> on random files and on valid files with a damaged header. Besides the shared
/// property, a file that opens must describe only tensors whose bytes lie inside the file's data section and match
/// their shape, since readers map those bytes without further checks.
/// </summary>
public sealed class SafetensorsFuzzTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    // Two small tensors: [2, 3] F32 and [4] BF16.
    internal const string ValidHeader =
        """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}}""";

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RandomBytesOpenOrFailTyped()
    {
        var gen = Gen.Byte.Array[0, 64].Select(Gen.ULong, Gen.Int[0, 3], (tail, len, kind) =>
        {
            // Often a plausible header length, so the parser gets past the first check.
            ulong headerLen = kind switch { 0 => len, 1 => (ulong)tail.Length, 2 => len % 80, _ => (ulong)Math.Max(0, tail.Length - 3) };
            var file = new byte[8 + tail.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(file, headerLen);
            tail.CopyTo(file, 8);
            return file;
        });
        Fuzz.Check(output, "safetensors", gen, OpenChecked, Typed, cases: 400, print: Convert.ToHexString);
    }

    [Fact]
    public void MutatedHeadersOpenOrFailTyped()
    {
        var gen = Gen.Int.Select(Gen.Int[0, 9], (seed, lengthKind) => Build(JsonMutator.Mutate(ValidHeader, seed), lengthKind, seed));
        Fuzz.Check(output, "safetensors", gen, OpenChecked, Typed, cases: 600,
            print: f => Encoding.UTF8.GetString(f.AsSpan(8, Math.Min(f.Length - 8, 2000))));
    }

    [Fact]
    public void GeneratedHeadersWithExtremeShapesAndOffsetsOpenOrFailTyped()
    {
        // Every field drawn from edge values: this reaches the arithmetic that random mutation rarely does.
        var edge = Gen.OneOf<long>(Gen.Long[-3, 40], Gen.OneOf<long>(long.MaxValue, long.MinValue, long.MaxValue - 7, int.MaxValue,
            1L << 31, 1L << 32, 1L << 61, 1L << 62, 3074457345618258603L, -(1L << 62), -8, -24));
        var tensor = Gen.Select(Gen.OneOf<string>("F32", "F16", "BF16", "I8", ""), edge.Array[0, 4], edge.Array[0, 3],
            (dtype, shape, offsets) => $$"""{"dtype":"{{dtype}}","shape":[{{string.Join(",", shape)}}],"data_offsets":[{{string.Join(",", offsets)}}]}""");
        var gen = tensor.Array[1, 3].Select(Gen.Int[0, 9], Gen.Int, (tensors, lengthKind, seed) =>
            Build(Encoding.UTF8.GetBytes("{" + string.Join(",", tensors.Select((t, i) => $"\"t{i}\":{t}")) + "}"), lengthKind, seed));
        Fuzz.Check(output, "safetensors", gen, OpenChecked, Typed, cases: 600,
            print: f => Encoding.UTF8.GetString(f.AsSpan(8, Math.Min(f.Length - 8, 2000))));
    }

    /// <summary>A file of header <paramref name="header"/> and 32 data bytes, its length field sometimes wrong.</summary>
    internal static byte[] Build(byte[] header, int lengthKind, int seed)
    {
        var file = new byte[8 + header.Length + 32];
        ulong len = lengthKind switch
        {
            0 => (ulong)header.Length + 1,
            1 => (ulong)header.Length - 1,
            2 => ulong.MaxValue,
            3 => (ulong)long.MaxValue,
            4 => 0,
            _ => (ulong)header.Length,
        };
        BinaryPrimitives.WriteUInt64LittleEndian(file, len);
        header.CopyTo(file, 8);
        return lengthKind == 5 ? file[..new Random(seed).Next(file.Length)] : file;
    }

    private void OpenChecked(byte[] bytes)
    {
        string path = _dir.File("case.safetensors");
        File.WriteAllBytes(path, bytes);
        using var file = SafetensorsFile.Open(path);
        long dataStart = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        foreach (var t in file.Tensors.Values)
        {
            if (t.Offset < dataStart || t.ByteLength < 0 || t.Offset + t.ByteLength > bytes.Length)
                throw new FuzzFailure($"tensor {t.Name} accepted at bytes [{t.Offset}, {t.Offset + t.ByteLength}) outside the data section [{dataStart}, {bytes.Length})");
            BigInteger elements = t.Shape.Aggregate(BigInteger.One, (a, d) => a * d);
            if (elements * t.DType.Size() != t.ByteLength)
                throw new FuzzFailure($"tensor {t.Name} accepted with shape {t.ShapeText} of {t.DType} but {t.ByteLength} bytes");
        }
    }

    private string? Typed(Exception e) => Fuzz.Only<ModelFormatException>(m =>
        m.File != _dir.File("case.safetensors") ? $"the error names '{m.File}', not the file" : null)(e);
}
