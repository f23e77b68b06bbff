using Strata.Models;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Engine.Reference;

/// <summary>
/// A plain float32 Llama forward pass in C#: slow, obvious and independent of the ONNX graphs,
/// which it serves as the test oracle for. Supports RMSNorm, rotate_half RoPE (with Llama-3
/// scaling), grouped-query and multi-head attention, q/k/v biases, SwiGLU, and tied or untied LM heads.
/// The weights are immutable after <see cref="Load"/>; per-sequence state lives in <see cref="ReferenceSession"/>.
/// </summary>
public sealed class ReferenceModel
{
    private readonly float[] _embed;     // [vocab, H]
    private readonly float[] _finalNorm; // [H]
    private readonly float[] _lmHead;    // [vocab, H]; the same array as _embed when tied
    private readonly ReferenceLayer[] _layers;

    private ReferenceModel(LlamaConfig config, float[] embed, float[] finalNorm, float[] lmHead, ReferenceLayer[] layers)
    {
        Config = config;
        _embed = embed;
        _finalNorm = finalNorm;
        _lmHead = lmHead;
        _layers = layers;
    }

    /// <summary>The model's shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>
    /// Reads every weight of <paramref name="config"/> from <paramref name="tensors"/> as float32.
    /// Throws <see cref="ModelFormatException"/> naming the tensor when one is missing or has the wrong size.
    /// </summary>
    public static ReferenceModel Load(LlamaConfig config, ITensorSource tensors)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        float[] Read(string name, long elements)
        {
            if (!tensors.TryGet(name, out var info))
                throw new ModelFormatException("reference model", name, "tensor is missing");
            if (info.ElementCount != elements)
                throw new ModelFormatException(info.File, name,
                    $"has {info.ElementCount} elements ({info.ShapeText}), the config implies {elements}");
            var data = new float[checked((int)elements)];
            tensors.ReadFloat32(name, data);
            return data;
        }

        long h = config.HiddenSize, vocab = config.VocabSize;
        double[] invFreq = RopeScaling.InverseFrequencies(config.HeadDim, config.RopeTheta, config.RopeScaling);
        float[] embed = Read(LlamaTensors.Embed, vocab * h);
        float[] lmHead = config.TieWordEmbeddings ? embed : Read(LlamaTensors.LmHead, vocab * h);
        var layers = new ReferenceLayer[config.NumLayers];
        for (int i = 0; i < layers.Length; i++)
            layers[i] = new ReferenceLayer(config, i, invFreq, Read);
        return new ReferenceModel(config, embed, Read(LlamaTensors.FinalNorm, h), lmHead, layers);
    }

    /// <summary>Starts a sequence over layers [<paramref name="firstLayer"/>, <paramref name="endLayer"/>)
    /// (all layers by default) with room for <paramref name="maxSeqLen"/> positions.</summary>
    public ReferenceSession CreateSession(int maxSeqLen, int firstLayer = 0, int? endLayer = null) =>
        new(this, maxSeqLen, firstLayer, endLayer ?? Config.NumLayers);

    /// <summary>The embedding row of <paramref name="token"/>: [hidden].</summary>
    public float[] Embed(int token) => Embed([token]);

    /// <summary>The embedding rows of <paramref name="tokens"/>: [seq, hidden], row-major.</summary>
    public float[] Embed(ReadOnlySpan<int> tokens)
    {
        int hidden = Config.HiddenSize;
        var x = new float[tokens.Length * hidden]; // [seq, H]
        for (int t = 0; t < tokens.Length; t++)
        {
            int id = tokens[t];
            if ((uint)id >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), id, $"token id must be in [0, {Config.VocabSize})");
            _embed.AsSpan(id * hidden, hidden).CopyTo(x.AsSpan(t * hidden));
        }
        return x;
    }

    /// <summary>Final RMSNorm and LM head for one or more hidden rows: [seq, hidden] -> logits [seq, vocab].</summary>
    public float[] Head(float[] hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        int h = Config.HiddenSize;
        if (hidden.Length == 0 || hidden.Length % h != 0)
            throw new ArgumentException($"length {hidden.Length} is not a positive multiple of hidden size {h}", nameof(hidden));
        int seq = hidden.Length / h;
        float[] xn = ReferenceMath.RmsNorm(hidden, seq, h, _finalNorm, Config.RmsNormEps); // [seq, H]
        return ReferenceMath.Linear(xn, seq, _lmHead, Config.VocabSize, h);                // [seq, vocab]
    }

    /// <summary>Runs layer <paramref name="layer"/> in place on x [seq, hidden], appending to its cache.</summary>
    internal void ForwardLayer(int layer, float[] x, int seq, LayerKvCache cache) =>
        _layers[layer].Forward(x, seq, cache);
}
