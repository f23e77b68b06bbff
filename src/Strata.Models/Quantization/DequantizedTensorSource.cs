using System.Runtime.InteropServices;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Models.Quantization;

/// <summary>
/// A view of a tensor source in which every quantized weight reads as the float32 matrix it stands for
/// (<see cref="BlockQuantizer.Dequantize"/>) under its Hugging Face name, and its stored parts are hidden. Float
/// readers (the reference forward pass, accuracy reports) run a quantized package through it. It does not own the
/// source: disposing the view leaves the source open.
/// </summary>
public sealed class DequantizedTensorSource : ITensorSource
{
    private readonly ITensorSource _source;
    private readonly Dictionary<string, (int Rows, int Cols, TensorInfo Info)> _quantized = new(StringComparer.Ordinal);
    private readonly List<string> _names;

    /// <summary>A view of <paramref name="source"/>, whose weights have the shapes <paramref name="config"/> implies.</summary>
    public DequantizedTensorSource(ITensorSource source, LlamaConfig config)
    {
        _source = source;
        var weights = LlamaTensors.Expected(config).Where(t => t.Shape.Length == 2).ToList();
        if (config.TieWordEmbeddings) weights.Add(new ExpectedTensor(LlamaTensors.LmHead, [config.VocabSize, config.HiddenSize], -1));
        var hidden = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in weights)
        {
            int bits = BlockQuantizer.SupportedBits.FirstOrDefault(b => source.TryGet(QuantizedTensors.DataName(t.Name, b), out _));
            if (bits == 0) continue;
            var data = source.Get(QuantizedTensors.DataName(t.Name, bits), t.Name);
            _quantized[t.Name] = ((int)t.Shape[0], (int)t.Shape[1],
                new TensorInfo(t.Name, TensorDType.F32, t.Shape, data.File, data.Offset, t.Shape[0] * t.Shape[1] * 4));
            hidden.UnionWith([data.Name, QuantizedTensors.ScalesName(t.Name), QuantizedTensors.ZeroPointsName(t.Name)]);
        }
        _names = source.Names.Where(n => !hidden.Contains(n)).Concat(_quantized.Keys).ToList();
    }

    /// <summary>Weights read dequantized.</summary>
    public IReadOnlyCollection<string> QuantizedNames => _quantized.Keys;

    /// <inheritdoc />
    public IReadOnlyCollection<string> Names => _names;

    /// <inheritdoc />
    public bool TryGet(string name, out TensorInfo info)
    {
        if (_quantized.TryGetValue(name, out var q))
        {
            info = q.Info;
            return true;
        }
        return _source.TryGet(name, out info);
    }

    /// <inheritdoc />
    public void ReadFloat32(string name, Span<float> destination)
    {
        if (!_quantized.TryGetValue(name, out var q))
        {
            _source.ReadFloat32(name, destination);
            return;
        }
        var m = QuantizedTensors.TryRead(_source, name, q.Rows, q.Cols)!;
        BlockQuantizer.Dequantize(m).CopyTo(destination);
    }

    /// <inheritdoc />
    public void ReadRaw(string name, Span<byte> destination)
    {
        if (!_quantized.TryGetValue(name, out var q))
        {
            _source.ReadRaw(name, destination);
            return;
        }
        var values = new float[(long)q.Rows * q.Cols];
        ReadFloat32(name, values);
        MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(destination);
    }

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
