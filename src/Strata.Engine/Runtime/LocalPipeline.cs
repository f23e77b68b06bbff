using Microsoft.Extensions.Logging;
using Strata.Engine.Graph;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Engine.Runtime;

/// <summary>
/// K stages run back to back in one process: the floor the cluster is measured against. Each stage has its own
/// KV pool; a <see cref="PipelineSequence"/> owns one slot in every pool.
/// </summary>
public sealed class LocalPipeline : IDisposable
{
    private readonly StageRuntime[] _stages;
    private readonly KvPool[] _pools;
    private readonly bool[] _slotInUse;
    private readonly EngineOptions _options;

    private LocalPipeline(StageRuntime[] stages, KvPool[] pools, EngineOptions options)
    {
        _stages = stages;
        _pools = pools;
        _options = options;
        _slotInUse = new bool[pools[0].Slots];
    }

    /// <summary>The stages, first to last.</summary>
    public IReadOnlyList<StageRuntime> Stages => _stages;

    /// <summary>The model's shape.</summary>
    public LlamaConfig Config => _stages[0].Config;

    /// <summary>Positions one sequence can hold.</summary>
    public int MaxContext => _stages[0].MaxContext;

    /// <summary>Loads the model split evenly into <paramref name="stageCount"/> stages.</summary>
    /// <param name="config">Model shape.</param>
    /// <param name="tensors">Weights.</param>
    /// <param name="stageCount">Number of stages (1 = the whole model in one graph).</param>
    /// <param name="options">Device, threads, KV capacity.</param>
    /// <param name="maxSequences">KV slots (concurrent sequences).</param>
    /// <param name="logger">Receives fallback warnings.</param>
    public static LocalPipeline Load(LlamaConfig config, ITensorSource tensors, int stageCount, EngineOptions options,
        int maxSequences = 1, ILogger? logger = null) =>
        Load(config, tensors, StageSpec.Even(config.NumLayers, stageCount), options, maxSequences, logger);

    /// <summary>Loads the given stages (they must cover the model's layers contiguously).</summary>
    public static LocalPipeline Load(LlamaConfig config, ITensorSource tensors, IReadOnlyList<StageSpec> specs,
        EngineOptions options, int maxSequences = 1, ILogger? logger = null)
    {
        for (int i = 0; i < specs.Count; i++)
        {
            int expectedFirst = i == 0 ? 0 : specs[i - 1].EndLayer;
            if (specs[i].FirstLayer != expectedFirst || (i == specs.Count - 1 && !specs[i].IsLast))
                throw new ArgumentException("stages must cover the model's layers contiguously from 0 to the last", nameof(specs));
        }
        var stages = new List<StageRuntime>();
        var pools = new List<KvPool>();
        try
        {
            foreach (var spec in specs)
            {
                var stage = StageRuntime.Load(config, tensors, spec, options, logger);
                stages.Add(stage);
                pools.Add(stage.CreateKvPool(maxSequences));
            }
            return new LocalPipeline(stages.ToArray(), pools.ToArray(), options);
        }
        catch
        {
            foreach (var p in pools) p.Dispose();
            foreach (var s in stages) s.Dispose();
            throw;
        }
    }

    /// <summary>Starts a sequence in a free KV slot.</summary>
    public PipelineSequence NewSequence()
    {
        lock (_slotInUse)
        {
            int slot = Array.IndexOf(_slotInUse, false);
            if (slot < 0) throw new InvalidOperationException($"all {_slotInUse.Length} KV slots are in use");
            _slotInUse[slot] = true;
            return new PipelineSequence(this, slot);
        }
    }

    internal void Release(int slot)
    {
        lock (_slotInUse) _slotInUse[slot] = false;
    }

    /// <summary>Appends <paramref name="tokens"/> to the sequence (prefill in chunks of the configured size) and
    /// returns the logits [vocab] of the last one.</summary>
    internal float[] Forward(PipelineSequence seq, ReadOnlySpan<int> tokens)
    {
        if (tokens.Length == 0) throw new ArgumentException("forward needs at least one token");
        if (seq.Length + tokens.Length > MaxContext) throw new ContextOverflowException(seq.Length + tokens.Length, MaxContext);
        var logits = new float[Config.VocabSize];
        for (int start = 0; start < tokens.Length; start += _options.PrefillChunk)
        {
            var chunk = tokens.Slice(start, Math.Min(_options.PrefillChunk, tokens.Length - start));
            Step(seq.Slot, seq.Length, chunk, logits);
            seq.Length += chunk.Length;
        }
        return logits;
    }

    private void Step(int slot, int past, ReadOnlySpan<int> chunk, Span<float> logits)
    {
        ReadOnlySpan<int> pastLengths = [past];
        Activations? hidden = null;
        for (int s = 0; s < _stages.Length; s++)
            hidden = _stages[s].Run(_pools[s], slot, pastLengths, chunk.Length, s == 0 ? chunk : default, hidden, logits);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var p in _pools) p.Dispose();
        foreach (var s in _stages) s.Dispose();
    }
}

/// <summary>One sequence in a <see cref="LocalPipeline"/>: its KV slot and its length.</summary>
public sealed class PipelineSequence : IDisposable
{
    private readonly LocalPipeline _pipeline;
    private bool _disposed;

    internal PipelineSequence(LocalPipeline pipeline, int slot)
    {
        _pipeline = pipeline;
        Slot = slot;
    }

    /// <summary>The KV slot in every stage.</summary>
    public int Slot { get; }

    /// <summary>Positions cached so far.</summary>
    public int Length { get; internal set; }

    /// <summary>Appends tokens and returns the logits [vocab] after the last one.</summary>
    public float[] Forward(ReadOnlySpan<int> tokens)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _pipeline.Forward(this, tokens);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _pipeline.Release(Slot);
    }
}
