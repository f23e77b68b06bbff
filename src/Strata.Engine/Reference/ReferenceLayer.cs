using Strata.Models.Config;

namespace Strata.Engine.Reference;

/// <summary>
/// One decoder layer's weights, as float32 in Hugging Face layout ([out, in] for projections),
/// and its forward pass over a block of new tokens. Dimensions: H = hidden, Q = heads * headDim,
/// KV = kvHeads * headDim, F = intermediate.
/// </summary>
internal sealed class ReferenceLayer
{
    private readonly LlamaConfig _c;
    private readonly double[] _invFreq;   // [headDim / 2]

    private readonly float[] _inputNorm;  // [H]
    private readonly float[] _wq;         // [Q, H]
    private readonly float[] _wk;         // [KV, H]
    private readonly float[] _wv;         // [KV, H]
    private readonly float[]? _bq;        // [Q], only with AttentionBias
    private readonly float[]? _bk;        // [KV]
    private readonly float[]? _bv;        // [KV]
    private readonly float[] _wo;         // [H, Q]
    private readonly float[] _postNorm;   // [H]
    private readonly float[] _wGate;      // [F, H]
    private readonly float[] _wUp;        // [F, H]
    private readonly float[] _wDown;      // [H, F]

    public ReferenceLayer(LlamaConfig config, int layer, double[] invFreq, Func<string, long, float[]> read)
    {
        _c = config;
        _invFreq = invFreq;
        long h = config.HiddenSize, q = (long)config.NumHeads * config.HeadDim;
        long kv = (long)config.NumKvHeads * config.HeadDim, f = config.IntermediateSize;

        _inputNorm = read(LlamaTensors.InputNorm(layer), h);
        _wq = read(LlamaTensors.Attn(layer, 'q'), q * h);
        _wk = read(LlamaTensors.Attn(layer, 'k'), kv * h);
        _wv = read(LlamaTensors.Attn(layer, 'v'), kv * h);
        if (config.AttentionBias)
        {
            _bq = read(LlamaTensors.AttnBias(layer, 'q'), q);
            _bk = read(LlamaTensors.AttnBias(layer, 'k'), kv);
            _bv = read(LlamaTensors.AttnBias(layer, 'v'), kv);
        }
        _wo = read(LlamaTensors.Attn(layer, 'o'), h * q);
        _postNorm = read(LlamaTensors.PostAttentionNorm(layer), h);
        _wGate = read(LlamaTensors.Mlp(layer, "gate"), f * h);
        _wUp = read(LlamaTensors.Mlp(layer, "up"), f * h);
        _wDown = read(LlamaTensors.Mlp(layer, "down"), h * f);
    }

    /// <summary>
    /// Runs the layer on <paramref name="x"/> [seq, H] in place: the new tokens sit at positions
    /// cache.Length .. cache.Length + seq - 1, and their keys and values are appended to the cache.
    /// </summary>
    public void Forward(float[] x, int seq, LayerKvCache cache)
    {
        int hidden = _c.HiddenSize;

        // Attention block: x += o_proj(attention(rope(q), rope(k), v)) over input_layernorm(x).
        float[] xn = ReferenceMath.RmsNorm(x, seq, hidden, _inputNorm, _c.RmsNormEps); // [seq, H]
        float[] attn = Attention(xn, seq, cache);                                     // [seq, Q]
        ReferenceMath.AddInPlace(x, ReferenceMath.Linear(attn, seq, _wo, hidden, _c.NumHeads * _c.HeadDim));

        // MLP block: x += down(silu(gate(xn)) * up(xn)) over post_attention_layernorm(x).
        xn = ReferenceMath.RmsNorm(x, seq, hidden, _postNorm, _c.RmsNormEps);        // [seq, H]
        int f = _c.IntermediateSize;
        float[] gate = ReferenceMath.Linear(xn, seq, _wGate, f, hidden);              // [seq, F]
        float[] up = ReferenceMath.Linear(xn, seq, _wUp, f, hidden);                  // [seq, F]
        for (int i = 0; i < gate.Length; i++)
            gate[i] = ReferenceMath.Silu(gate[i]) * up[i];
        ReferenceMath.AddInPlace(x, ReferenceMath.Linear(gate, seq, _wDown, hidden, f));
    }

    /// <summary>Causal grouped-query attention for the new tokens; returns the heads' outputs [seq, Q].</summary>
    private float[] Attention(float[] xn, int seq, LayerKvCache cache)
    {
        int hidden = _c.HiddenSize, headDim = _c.HeadDim, heads = _c.NumHeads, kvHeads = _c.NumKvHeads;
        int start = cache.Length;

        float[] q = ReferenceMath.Linear(xn, seq, _wq, heads * headDim, hidden, _bq);    // [seq, Q]
        float[] k = ReferenceMath.Linear(xn, seq, _wk, kvHeads * headDim, hidden, _bk);  // [seq, KV]
        float[] v = ReferenceMath.Linear(xn, seq, _wv, kvHeads * headDim, hidden, _bv);  // [seq, KV]
        ReferenceMath.Rope(q, seq, heads, headDim, start, _invFreq);
        ReferenceMath.Rope(k, seq, kvHeads, headDim, start, _invFreq);
        cache.Append(k, v, seq);

        var output = new float[seq * heads * headDim]; // [seq, Q]
        var scores = new double[cache.Length];         // [positions attended]
        var acc = new double[headDim];                 // [headDim], one head's weighted sum of values
        double scale = 1.0 / Math.Sqrt(headDim);
        for (int t = 0; t < seq; t++)
        {
            int visible = start + t + 1; // causal: a token sees itself and everything before it
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / _c.GroupSize; // GQA: q heads [g*kvh, g*(kvh+1)) share kv head kvh
                var qh = q.AsSpan((t * heads + h) * headDim, headDim);
                double max = double.NegativeInfinity;
                for (int p = 0; p < visible; p++)
                {
                    var kp = cache.Key(p, kvh);
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) dot += (double)qh[i] * kp[i];
                    scores[p] = dot * scale;
                    max = Math.Max(max, scores[p]);
                }

                double sum = 0;
                for (int p = 0; p < visible; p++)
                {
                    scores[p] = Math.Exp(scores[p] - max);
                    sum += scores[p];
                }

                Array.Clear(acc);
                for (int p = 0; p < visible; p++)
                {
                    var vp = cache.Value(p, kvh);
                    for (int i = 0; i < headDim; i++) acc[i] += scores[p] * vp[i];
                }
                var oh = output.AsSpan((t * heads + h) * headDim, headDim);
                for (int i = 0; i < headDim; i++) oh[i] = (float)(acc[i] / sum);
            }
        }
        return output;
    }
}
