using Strata.Models.Quantization;
using Strata.Models.Checkpoints;

namespace Strata.Engine.Graph;

/// <summary>Reads Hugging Face weights ([out, in]) and lays them out for ONNX <c>MatMul</c> ([in, out]).</summary>
internal sealed class WeightReader(ITensorSource tensors)
{
    public float[] Read(string name) => tensors.ReadFloat32(name);

    /// <summary>Reads weight [rows, cols] in its quantized form, or null when the source holds it as floats.</summary>
    public QuantizedMatrix? ReadQuantized(string name, int rows, int cols) => QuantizedTensors.TryRead(tensors, name, rows, cols);

    /// <summary>Reads a [rows, cols] weight and returns its transpose [cols, rows].</summary>
    public float[] ReadTransposed(string name, int rows, int cols)
    {
        var src = Read(name);
        if (src.Length != (long)rows * cols)
            throw new InvalidOperationException($"{name} holds {src.Length} values, expected {rows}x{cols}");
        return Transpose(src, rows, cols);
    }

    /// <summary>Concatenates arrays.</summary>
    public static float[] Concat(params float[][] parts) => parts.SelectMany(p => p).ToArray();

    /// <summary>Returns the transpose [cols, rows] of a row-major [rows, cols] matrix.</summary>
    public static float[] Transpose(float[] src, int rows, int cols)
    {
        var dst = new float[src.Length];
        const int block = 32;
        for (int r0 = 0; r0 < rows; r0 += block)
        {
            int r1 = Math.Min(rows, r0 + block);
            for (int c0 = 0; c0 < cols; c0 += block)
            {
                int c1 = Math.Min(cols, c0 + block);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        dst[(long)c * rows + r] = src[(long)r * cols + c];
            }
        }
        return dst;
    }
}
