using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Models.Tests.Synthetic;

/// <summary>
/// A minimal float32 Llama forward pass (one token at a time, KV cache in lists), only to check that synthetic
/// weights give sane activations and non-degenerate greedy output. The engine's reference forward is the real oracle.
/// </summary>
internal sealed class TinyForward
{
    private readonly LlamaConfig _c;
    private readonly ITensorSource _w;
    private readonly Dictionary<string, float[]> _cache = [];
    private readonly List<float[]>[] _keys, _values;
    private readonly double[] _invFreq;

    public TinyForward(ITensorSource weights, LlamaConfig config)
    {
        _w = weights;
        _c = config;
        _keys = Enumerable.Range(0, config.NumLayers).Select(_ => new List<float[]>()).ToArray();
        _values = Enumerable.Range(0, config.NumLayers).Select(_ => new List<float[]>()).ToArray();
        _invFreq = RopeScaling.InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
    }

    /// <summary>RMS of the residual stream after the last layer of the latest step.</summary>
    public double LastResidualRms { get; private set; }

    /// <summary>Runs one token at the next position; returns the logits.</summary>
    public float[] Step(int token)
    {
        int h = _c.HiddenSize, pos = _keys[0].Count;
        var x = W(LlamaTensors.Embed).AsSpan(token * h, h).ToArray();
        for (int l = 0; l < _c.NumLayers; l++)
        {
            Add(x, Attention(l, Norm(x, W(LlamaTensors.InputNorm(l))), pos));
            var xn = Norm(x, W(LlamaTensors.PostAttentionNorm(l)));
            var g = MatVec(W(LlamaTensors.Mlp(l, "gate")), xn);
            var u = MatVec(W(LlamaTensors.Mlp(l, "up")), xn);
            for (int i = 0; i < g.Length; i++) g[i] = g[i] / (1 + MathF.Exp(-g[i])) * u[i];
            Add(x, MatVec(W(LlamaTensors.Mlp(l, "down")), g));
        }
        LastResidualRms = Math.Sqrt(x.Average(v => (double)v * v));
        var head = _c.TieWordEmbeddings ? W(LlamaTensors.Embed) : W(LlamaTensors.LmHead);
        return MatVec(head, Norm(x, W(LlamaTensors.FinalNorm)));
    }

    private float[] Attention(int l, float[] xn, int pos)
    {
        int d = _c.HeadDim;
        var q = Project(l, 'q', xn);
        var k = Project(l, 'k', xn);
        var v = Project(l, 'v', xn);
        for (int hd = 0; hd < _c.NumHeads; hd++) Rope(q.AsSpan(hd * d, d), pos);
        for (int hd = 0; hd < _c.NumKvHeads; hd++) Rope(k.AsSpan(hd * d, d), pos);
        _keys[l].Add(k);
        _values[l].Add(v);
        var att = new float[_c.NumHeads * d];
        var scores = new double[pos + 1];
        for (int hd = 0; hd < _c.NumHeads; hd++)
        {
            int kv = hd / _c.GroupSize;
            for (int t = 0; t <= pos; t++)
            {
                double s = 0;
                for (int i = 0; i < d; i++) s += q[hd * d + i] * _keys[l][t][kv * d + i];
                scores[t] = s / Math.Sqrt(d);
            }
            double max = scores.Max(), sum = 0;
            for (int t = 0; t <= pos; t++) sum += scores[t] = Math.Exp(scores[t] - max);
            for (int t = 0; t <= pos; t++)
                for (int i = 0; i < d; i++) att[hd * d + i] += (float)(scores[t] / sum) * _values[l][t][kv * d + i];
        }
        return MatVec(W(LlamaTensors.Attn(l, 'o')), att);
    }

    private float[] Project(int l, char p, float[] xn)
    {
        var y = MatVec(W(LlamaTensors.Attn(l, p)), xn);
        if (_c.AttentionBias) Add(y, W(LlamaTensors.AttnBias(l, p)));
        return y;
    }

    // Hugging Face rotate_half: element i pairs with i + d/2.
    private void Rope(Span<float> x, int pos)
    {
        int half = x.Length / 2;
        for (int i = 0; i < half; i++)
        {
            double a = pos * _invFreq[i];
            float c = (float)Math.Cos(a), s = (float)Math.Sin(a), x0 = x[i], x1 = x[i + half];
            x[i] = x0 * c - x1 * s;
            x[i + half] = x1 * c + x0 * s;
        }
    }

    private float[] Norm(float[] x, float[] w)
    {
        double ms = x.Average(v => (double)v * v);
        float r = (float)(1 / Math.Sqrt(ms + _c.RmsNormEps));
        return x.Select((v, i) => v * r * w[i]).ToArray();
    }

    private static float[] MatVec(float[] w, float[] x)
    {
        var y = new float[w.Length / x.Length];
        for (int o = 0; o < y.Length; o++)
        {
            float s = 0;
            for (int i = 0; i < x.Length; i++) s += w[o * x.Length + i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static void Add(float[] x, float[] y)
    {
        for (int i = 0; i < x.Length; i++) x[i] += y[i];
    }

    private float[] W(string name)
    {
        if (!_cache.TryGetValue(name, out var w)) _cache[name] = w = _w.ReadFloat32(name);
        return w;
    }
}
