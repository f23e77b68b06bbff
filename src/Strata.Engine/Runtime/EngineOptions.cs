namespace Strata.Engine.Runtime;

/// <summary>How stages run: device, threads, KV capacity.</summary>
public sealed record EngineOptions
{
    /// <summary>Default KV capacity in positions when the model allows that many.</summary>
    public const int DefaultMaxContext = 2048;

    /// <summary>Device for the stages. CUDA runs fp16 graphs; when CUDA cannot load, stages fall back to the CPU
    /// (fp32) and log why.</summary>
    public DeviceSpec Device { get; init; } = DeviceSpec.Cpu;

    /// <summary>ONNX Runtime intra-op threads of the process-wide pool; 0 = one per core.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Positions each sequence's KV buffers hold (prompt plus generated tokens); null = the smaller of
    /// <see cref="DefaultMaxContext"/> and the model's max_position_embeddings.</summary>
    public int? MaxContext { get; init; }

    /// <summary>Element type of weights, activations and KV; null = fp16 on CUDA, fp32 on the CPU. fp16 on the CPU
    /// runs (ONNX Runtime has CPU fp16 kernels for these ops) but slowly: it exists to check the CUDA graph here.</summary>
    public Graph.ComputeType? Precision { get; init; }

    /// <summary>Element type of the KV cache; null = <see cref="Precision"/>'s. fp16 under fp32 compute halves the KV
    /// memory (twice the sessions in the same budget): attention runs in fp16 against the cache, the new tokens'
    /// q/k/v cast to it and the result cast back; every other op stays fp32.</summary>
    public Graph.ComputeType? KvPrecision { get; init; }

    /// <summary>
    /// MatMulNBits' <c>accuracy_level</c> for weights a package stores quantized: 4 (default) quantizes activations to
    /// int8 per block and runs integer dot products, 0 computes in the activations' type against weights dequantized
    /// block by block (exact up to float rounding, but much slower on the CPU for int8 weights). Measured on a 100M
    /// Llama, one thread: int4 decode 2.1x fp32 at level 4 and 1.3x at level 0, int8 1.6x and 0.17x; stories260K's
    /// greedy agreement with fp32 was the same at both levels. Ignored for float weights; CUDA kernels ignore it.
    /// </summary>
    public int QuantizedAccuracyLevel { get; init; } = Graph.StageGraphBuilder.DefaultQuantizedAccuracyLevel;

    /// <summary>Tokens per prefill run: longer prompts are processed in chunks of this size.</summary>
    public int PrefillChunk { get; init; } = 512;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (IntraOpThreads < 0) throw new ArgumentException($"IntraOpThreads must be >= 0, got {IntraOpThreads}", nameof(IntraOpThreads));
        if (MaxContext is < 1) throw new ArgumentException($"MaxContext must be >= 1, got {MaxContext}", nameof(MaxContext));
        if (QuantizedAccuracyLevel is < 0 or > 4)
            throw new ArgumentException($"QuantizedAccuracyLevel must be 0 to 4, got {QuantizedAccuracyLevel}", nameof(QuantizedAccuracyLevel));
        if (PrefillChunk < 1) throw new ArgumentException($"PrefillChunk must be >= 1, got {PrefillChunk}", nameof(PrefillChunk));
    }

    /// <summary>The KV capacity for a model with <paramref name="maxPositions"/> positions.</summary>
    public int ResolveMaxContext(int maxPositions) => MaxContext ?? Math.Min(DefaultMaxContext, maxPositions);
}
