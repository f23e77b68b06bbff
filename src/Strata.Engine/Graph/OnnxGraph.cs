using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace Strata.Engine.Graph;

/// <summary>Element types a stage graph computes in.</summary>
public enum ComputeType
{
    /// <summary>float32: the CPU execution provider's type.</summary>
    Float32,
    /// <summary>float16: the CUDA execution provider's type (GroupQueryAttention has no fp32 CUDA kernel).</summary>
    Float16,
}

/// <summary>
/// A small writer for ONNX <see cref="ModelProto"/> graphs: nodes, typed inputs and outputs, initializers. Weights go
/// into an external weight file at page-aligned offsets, written as they come, so the protobuf holds only the
/// structure (no 2 GB limit) and no copy of the weights is kept in managed memory.
/// </summary>
internal sealed class OnnxGraph
{
    /// <summary>Alignment of external tensors in the weight file (lets ONNX Runtime map them).</summary>
    public const int ExternalAlignment = 4096;

    private readonly GraphProto _graph = new() { Name = "strata_stage" };
    private readonly Stream _data;
    private readonly string _dataLocation;
    private int _nodeCount;

    /// <summary>A graph whose weights are written to <paramref name="data"/>, which the model refers to as
    /// <paramref name="dataLocation"/> (a path relative to the model file).</summary>
    public OnnxGraph(ComputeType compute, Stream data, string dataLocation)
    {
        Compute = compute;
        Kv = compute;
        _data = data;
        _dataLocation = dataLocation;
    }

    public ComputeType Compute { get; }

    /// <summary>The <c>accuracy_level</c> of MatMulNBits nodes.</summary>
    public int QuantizedAccuracyLevel { get; init; }

    /// <summary>The ONNX element type of <see cref="Compute"/>.</summary>
    public int ComputeElement => Element(Compute);

    /// <summary>Element type of the KV cache and of attention (GroupQueryAttention takes one type for all its
    /// inputs); default <see cref="Compute"/>.</summary>
    public ComputeType Kv { get; init; }

    /// <summary>Whether attention runs in another type than the rest (an fp16 KV cache of an fp32 stage).</summary>
    public bool KvDiffers => Kv != Compute;

    /// <summary>The ONNX element type of <see cref="Kv"/>.</summary>
    public int KvElement => Element(Kv);

    /// <summary>The ONNX element type of <paramref name="type"/>.</summary>
    public static int Element(ComputeType type) => type == ComputeType.Float16
        ? (int)TensorProto.Types.DataType.Float16
        : (int)TensorProto.Types.DataType.Float;

    /// <summary>Declares a graph input; a string dimension is symbolic, a long is fixed.</summary>
    public void Input(string name, int elementType, params object[] dims) => _graph.Input.Add(ValueInfo(name, elementType, dims));

    /// <summary>Declares a graph output.</summary>
    public void Output(string name, int elementType, params object[] dims) => _graph.Output.Add(ValueInfo(name, elementType, dims));

    /// <summary>Adds a float initializer converted to the compute type, its data appended to the weight file.</summary>
    public string Weight(string name, ReadOnlySpan<float> data, params long[] dims) => Weight(name, data, Compute, dims);

    /// <summary>Adds a float initializer converted to <paramref name="type"/>, its data appended to the weight file.</summary>
    public string Weight(string name, ReadOnlySpan<float> data, ComputeType type, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = Element(type) };
        t.Dims.AddRange(dims);
        Half[]? half = null;
        if (type == ComputeType.Float16)
        {
            half = new Half[data.Length];
            for (int i = 0; i < data.Length; i++) half[i] = (Half)data[i];
        }
        ReadOnlySpan<byte> bytes = half is null ? MemoryMarshal.AsBytes(data) : MemoryMarshal.AsBytes(half.AsSpan());
        return External(t, bytes);
    }

    /// <summary>Adds a uint8 initializer (packed quantized weights), its data appended to the weight file.</summary>
    public string Bytes(string name, ReadOnlySpan<byte> data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Uint8 };
        t.Dims.AddRange(dims);
        return External(t, data);
    }

    private string External(TensorProto t, ReadOnlySpan<byte> bytes)
    {
        long offset = (_data.Position + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
        for (long pad = offset - _data.Position; pad > 0; pad--) _data.WriteByte(0);
        _data.Write(bytes);
        t.DataLocation = TensorProto.Types.DataLocation.External;
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = _dataLocation });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        _graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>Adds a small int64 constant initializer.</summary>
    public string Int64s(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _graph.Initializer.Add(t);
        return name;
    }

    /// <summary>Adds a node; attribute values may be long, float, string or long[].</summary>
    public void Node(string op, string[] inputs, string[] outputs, string domain = "", params (string Name, object Value)[] attributes)
    {
        var n = new NodeProto { OpType = op, Domain = domain, Name = $"{op}_{_nodeCount++}" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        foreach (var (key, value) in attributes) n.Attribute.Add(Attribute(key, value));
        _graph.Node.Add(n);
    }

    /// <summary>Writes the serialized model (opset 21 plus com.microsoft 1) to <paramref name="output"/>.</summary>
    public void WriteTo(Stream output)
    {
        var model = new ModelProto
        {
            IrVersion = 10,
            ProducerName = "strata",
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 21 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        model.WriteTo(output);
    }

    private static ValueInfoProto ValueInfo(string name, int elementType, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                int i => new TensorShapeProto.Types.Dimension { DimValue = i },
                long l => new TensorShapeProto.Types.Dimension { DimValue = l },
                _ => throw new ArgumentException($"bad dimension {d}"),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = elementType, Shape = shape } },
        };
    }

    private static AttributeProto Attribute(string name, object value) => value switch
    {
        int i => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = i },
        long l => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = l },
        float f => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = f },
        double d => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)d },
        string s => new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(s) },
        _ => throw new ArgumentException($"unsupported attribute type for {name}"),
    };
}
