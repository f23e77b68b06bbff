namespace Strata.Engine.Reference;

/// <summary>
/// The few kernels the reference forward pass needs, written as plain loops.
/// Row-major everywhere: a matrix [rows, cols] stores row r at [r * cols, (r + 1) * cols).
/// </summary>
internal static class ReferenceMath
{
    // Below this many multiply-adds a matmul runs on the calling thread: tiny models
    // (stories260K) are faster without the Parallel.For overhead.
    private const long ParallelThreshold = 1 << 18;

    /// <summary>
    /// y = x W^T for every row of x: x [seq, inDim], w [outDim, inDim] (Hugging Face's
    /// [out, in] layout), optional bias [outDim]; returns y [seq, outDim].
    /// Accumulates in double so the oracle is at least as accurate as the graphs it checks.
    /// </summary>
    public static float[] Linear(float[] x, int seq, float[] w, int outDim, int inDim, float[]? bias = null)
    {
        var y = new float[seq * outDim]; // [seq, outDim]
        void Row(int o)
        {
            var wRow = w.AsSpan(o * inDim, inDim);
            for (int t = 0; t < seq; t++)
            {
                var xRow = x.AsSpan(t * inDim, inDim);
                double acc = bias is null ? 0.0 : bias[o];
                for (int i = 0; i < inDim; i++)
                    acc += (double)wRow[i] * xRow[i];
                y[t * outDim + o] = (float)acc;
            }
        }

        if ((long)seq * outDim * inDim < ParallelThreshold)
        {
            for (int o = 0; o < outDim; o++) Row(o);
        }
        else
        {
            Parallel.For(0, outDim, Row);
        }
        return y;
    }

    /// <summary>
    /// RMSNorm of every row: x [seq, dim] -> x / sqrt(mean(x^2) + eps) * weight [dim], as a new array.
    /// </summary>
    public static float[] RmsNorm(float[] x, int seq, int dim, float[] weight, double eps)
    {
        var y = new float[seq * dim]; // [seq, dim]
        for (int t = 0; t < seq; t++)
        {
            var row = x.AsSpan(t * dim, dim);
            double sumSq = 0;
            for (int i = 0; i < dim; i++) sumSq += (double)row[i] * row[i];
            double inv = 1.0 / Math.Sqrt(sumSq / dim + eps);
            for (int i = 0; i < dim; i++)
                y[t * dim + i] = (float)(row[i] * inv) * weight[i];
        }
        return y;
    }

    /// <summary>
    /// Rotary embedding in place, Hugging Face rotate_half layout: within each head of width d,
    /// element i pairs with element i + d/2 and turns by angle position * invFreq[i].
    /// <paramref name="x"/> is [seq, heads * headDim]; row t sits at position <paramref name="firstPosition"/> + t.
    /// </summary>
    public static void Rope(float[] x, int seq, int heads, int headDim, int firstPosition, double[] invFreq)
    {
        int half = headDim / 2;
        for (int t = 0; t < seq; t++)
        {
            int pos = firstPosition + t;
            for (int i = 0; i < half; i++)
            {
                double angle = pos * invFreq[i];
                float cos = (float)Math.Cos(angle), sin = (float)Math.Sin(angle);
                for (int h = 0; h < heads; h++)
                {
                    int b = (t * heads + h) * headDim;
                    float x1 = x[b + i], x2 = x[b + i + half];
                    x[b + i] = x1 * cos - x2 * sin;
                    x[b + i + half] = x2 * cos + x1 * sin;
                }
            }
        }
    }

    /// <summary>SiLU: x * sigmoid(x).</summary>
    public static float Silu(float x) => (float)(x / (1.0 + Math.Exp(-x)));

    /// <summary>Adds <paramref name="delta"/> into <paramref name="x"/> element by element (the residual).</summary>
    public static void AddInPlace(float[] x, float[] delta)
    {
        for (int i = 0; i < x.Length; i++) x[i] += delta[i];
    }
}
