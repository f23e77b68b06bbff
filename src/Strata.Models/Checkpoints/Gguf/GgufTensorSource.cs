using System.Runtime.InteropServices;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// The tensors of a GGUF file under their Hugging Face names, in Hugging Face's row order (q and k un-permuted,
/// see <see cref="GgufPermute"/>). Float tensors read as themselves; quantized ones read as float32 (dequantized, as
/// ggml does), and Q8_0 and Q4_0 matrices can also be read as the <see cref="QuantizedMatrix"/> they already are
/// (<see cref="ReadNative"/>). Owns (and disposes) the file.
/// </summary>
public sealed class GgufTensorSource : ITensorSource
{
    private readonly GgufFile _file;
    private readonly Dictionary<string, (GgufTensor Tensor, TensorInfo Info, int? Heads)> _tensors = new(StringComparer.Ordinal);

    /// <summary>A view of <paramref name="file"/> for a model of shape <paramref name="config"/>.</summary>
    /// <param name="file">The open file (owned from now on).</param>
    /// <param name="config">The shape its metadata describes.</param>
    /// <param name="architecture">The GGUF architecture (<c>llama</c> rows are permuted, <c>qwen2</c> rows are not).</param>
    public GgufTensorSource(GgufFile file, LlamaConfig config, string architecture)
    {
        _file = file;
        var expected = LlamaTensors.Expected(config).Select(t => t.Name).ToList();
        if (config.TieWordEmbeddings) expected.Add(LlamaTensors.LmHead);
        foreach (string hf in expected)
        {
            if (GgufTensorNames.FromHf(hf) is not { } name || !file.Tensors.TryGetValue(name, out var t)) continue;
            var dtype = t.Type.FloatDType() ?? TensorDType.F32;
            var info = new TensorInfo(hf, dtype, t.Shape, file.Path, t.Offset, t.ElementCount * dtype.Size());
            _tensors[hf] = (t, info, GgufTensorNames.PermutedHeads(hf, config, architecture));
        }
    }

    /// <summary>The file's path.</summary>
    public string Path => _file.Path;

    /// <inheritdoc />
    public IReadOnlyCollection<string> Names => _tensors.Keys;

    /// <summary>The GGUF tensor a Hugging Face name reads from.</summary>
    public GgufTensor Tensor(string name) => Lookup(name).Tensor;

    /// <summary>Whether the tensor's bytes in the file are exactly what <see cref="ReadRaw"/> returns (a float type in
    /// Hugging Face's order), so they may be copied straight from <see cref="TensorInfo.Offset"/>.</summary>
    public bool IsStoredAsIs(string name) => Lookup(name) is var (t, _, heads) && !t.Type.IsQuantized() && heads is null;

    /// <inheritdoc />
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

    /// <inheritdoc />
    public void ReadFloat32(string name, Span<float> destination)
    {
        var (t, _, heads) = Lookup(name);
        if (destination.Length != t.ElementCount)
            throw new ArgumentException($"destination holds {destination.Length} elements, tensor {name} has {t.ElementCount}", nameof(destination));
        var (rows, cols) = Rows(t, heads);
        int rowBytes = (int)t.Type.RowBytes(cols);
        for (long r = 0; r < rows; r++)
        {
            int target = heads is int h ? HfRow(r, rows, h) : (int)r;
            GgmlTypes.Dequantize(t.Type, _file.Bytes(t, r * rowBytes, rowBytes), destination.Slice(target * cols, cols));
        }
    }

    /// <inheritdoc />
    public void ReadRaw(string name, Span<byte> destination)
    {
        var (t, info, heads) = Lookup(name);
        if (destination.Length != info.ByteLength)
            throw new ArgumentException($"destination holds {destination.Length} bytes, tensor {name} has {info.ByteLength}", nameof(destination));
        if (t.Type.IsQuantized())
        {
            ReadFloat32(name, MemoryMarshal.Cast<byte, float>(destination));
            return;
        }
        var (rows, cols) = Rows(t, heads);
        int rowBytes = (int)t.Type.RowBytes(cols);
        for (long r = 0; r < rows; r++)
        {
            int target = heads is int h ? HfRow(r, rows, h) : (int)r;
            _file.Bytes(t, r * rowBytes, rowBytes).CopyTo(destination.Slice(target * rowBytes, rowBytes));
        }
    }

    /// <summary>
    /// A Q8_0 or Q4_0 matrix as MatMulNBits' block-32 layout, without going through float: Q8_0's signed bytes q
    /// become q + 128 with zero point 128, Q4_0's nibbles are re-paired (ggml keeps values j and j + 16 in one byte,
    /// MatMulNBits values 2j and 2j + 1) with zero point 8, and the fp16 scales widen to float. Both dequantize to
    /// exactly the values ggml gives. Null when the tensor is not Q8_0 or Q4_0, or not of <paramref name="bits"/>.
    /// </summary>
    public QuantizedMatrix? ReadNative(string name, int bits)
    {
        var (t, _, heads) = Lookup(name);
        if (t.Dims.Length != 2 || !(t.Type == GgmlType.Q8_0 && bits == 8 || t.Type == GgmlType.Q4_0 && bits == 4)) return null;
        int cols = (int)t.Dims[0], rows = (int)t.Dims[1];
        var m = new QuantizedMatrix(rows, cols, bits, 32, [], [], []);
        m = m with
        {
            Data = new byte[(long)rows * m.DataBytesPerRow],
            Scales = new float[(long)rows * m.BlocksPerRow],
            ZeroPoints = new byte[(long)rows * m.ZeroPointBytesPerRow],
        };
        int blockBytes = t.Type.BlockBytes();
        for (int r = 0; r < rows; r++)
        {
            var row = _file.Bytes(t, (long)r * m.BlocksPerRow * blockBytes, m.BlocksPerRow * blockBytes);
            for (int b = 0; b < m.BlocksPerRow; b++)
            {
                var block = row.Slice(b * blockBytes, blockBytes);
                m.Scales[(long)r * m.BlocksPerRow + b] = GgmlTypes.Half(block);
                var dest = m.Data.AsSpan((int)((long)r * m.DataBytesPerRow + (long)b * m.BlockBytes), m.BlockBytes);
                if (bits == 8)
                {
                    for (int j = 0; j < 32; j++) dest[j] = (byte)(block[2 + j] ^ 0x80); // (sbyte)q + 128
                }
                else
                {
                    var qs = block.Slice(2, 16);
                    for (int j = 0; j < 16; j++)
                    {
                        int lo = Nibble(qs, 2 * j), hi = Nibble(qs, 2 * j + 1);
                        dest[j] = (byte)(lo | (hi << 4));
                    }
                }
            }
            var zps = m.ZeroPoints.AsSpan(r * m.ZeroPointBytesPerRow, m.ZeroPointBytesPerRow);
            if (bits == 8) zps.Fill(128);
            else for (int b = 0; b < m.BlocksPerRow; b++) zps[b / 2] |= (byte)(8 << (b % 2 * 4));
        }
        // MapRows sends source row r (a GGUF row) to the row returned: its Hugging Face row.
        return heads is int h ? m.MapRows(rows, r => HfRow(r, rows, h)) : m;
    }

    /// <summary>Rows and row length: a permuted vector (a q or k bias) is permuted element by element.</summary>
    private static (long Rows, int Cols) Rows(GgufTensor t, int? heads) =>
        t.Dims.Length == 1 && heads is not null ? (t.Dims[0], 1) : (t.ElementCount / t.Dims[0], (int)t.Dims[0]);

    // Value k of a ggml Q4_0 block: the low nibbles hold values 0-15, the high nibbles 16-31.
    private static int Nibble(ReadOnlySpan<byte> qs, int k) => k < 16 ? qs[k] & 0xF : qs[k - 16] >> 4;

    /// <summary>The Hugging Face row that GGUF row <paramref name="ggufRow"/> holds.</summary>
    private static int HfRow(long ggufRow, long rows, int heads)
    {
        int d = (int)(rows / heads), half = d / 2;
        int h = (int)(ggufRow / d), rem = (int)(ggufRow % d);
        // GGUF row h*D + 2i + s holds Hugging Face row h*D + s*D/2 + i.
        return h * d + rem % 2 * half + rem / 2;
    }

    private (GgufTensor Tensor, TensorInfo Info, int? Heads) Lookup(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new ModelFormatException(_file.Path, name, "tensor is not in this GGUF file");

    /// <inheritdoc />
    public void Dispose() => _file.Dispose();
}
