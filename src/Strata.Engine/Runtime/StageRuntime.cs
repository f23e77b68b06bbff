using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Strata.Engine.Graph;
using Strata.Models.Checkpoints;
using Strata.Models.Config;

namespace Strata.Engine.Runtime;

/// <summary>
/// One loaded stage: its ONNX Runtime session on the chosen execution provider and the graph's I/O names.
/// <see cref="Run"/> executes one step for a contiguous run of KV slots: a prefill chunk (one row, many tokens) or a
/// decode step (many rows, one token each). Not thread-safe: one caller runs steps at a time.
/// </summary>
public sealed partial class StageRuntime : IDisposable
{
    private readonly InferenceSession _session;
    private readonly ILogger _logger;
    private readonly string[] _outputNames;
    private readonly RunOptions _runOptions = new();

    private StageRuntime(LlamaConfig config, StageSpec stage, InferenceSession session, ComputeType compute, ComputeType kv,
        DeviceSpec device, int maxContext, ILogger logger)
    {
        Config = config;
        Stage = stage;
        _session = session;
        Compute = compute;
        Kv = kv;
        Device = device;
        MaxContext = maxContext;
        _logger = logger;
        var outputs = new List<string> { stage.IsLast ? StageGraphBuilder.Logits : StageGraphBuilder.HiddenOut };
        for (int l = stage.FirstLayer; l < stage.EndLayer; l++)
        {
            outputs.Add(StageGraphBuilder.PresentKey(l));
            outputs.Add(StageGraphBuilder.PresentValue(l));
        }
        _outputNames = outputs.ToArray();
    }

    /// <summary>The model's shape.</summary>
    public LlamaConfig Config { get; }
    /// <summary>The layer range served.</summary>
    public StageSpec Stage { get; }
    /// <summary>Element type of weights and activations.</summary>
    public ComputeType Compute { get; }
    /// <summary>Element type of the KV cache (and of attention).</summary>
    public ComputeType Kv { get; }
    /// <summary>The device actually used (CPU after a CUDA fallback).</summary>
    public DeviceSpec Device { get; }
    /// <summary>Positions per KV slot.</summary>
    public int MaxContext { get; }

    /// <summary>Builds the stage graph and loads it on the configured device, falling back to the CPU (logged) when
    /// the CUDA execution provider cannot load.</summary>
    public static StageRuntime Load(LlamaConfig config, ITensorSource tensors, StageSpec stage, EngineOptions options, ILogger? logger = null)
    {
        options.Validate();
        logger ??= NullLogger.Instance;
        OrtEnvironment.Initialize(options.IntraOpThreads);
        int maxContext = options.ResolveMaxContext(config.MaxPositionEmbeddings);

        if (options.Device.IsCuda)
        {
            SessionOptions? cudaOptions = null;
            try
            {
                cudaOptions = NewSessionOptions();
                cudaOptions.AppendExecutionProvider_CUDA(options.Device.Index);
                var compute = options.Precision ?? ComputeType.Float16;
                var kv = options.KvPrecision ?? compute;
                var session = CreateSession(config, tensors, stage, maxContext, compute, kv, options.QuantizedAccuracyLevel, cudaOptions);
                LogStageGraph(logger, stage.ToString(), options.Device.ToString(), Describe(compute, kv), StageGraphBuilder.DescribeProjections(config, tensors, stage, options.QuantizedAccuracyLevel));
                return new StageRuntime(config, stage, session, compute, kv, options.Device, maxContext, logger);
            }
            catch (OnnxRuntimeException e)
            {
                LogCudaFallback(logger, options.Device.ToString(), stage.ToString(), e.Message);
            }
            finally
            {
                cudaOptions?.Dispose();
            }
        }

        using var cpuOptions = NewSessionOptions();
        var cpuCompute = options.Device.IsCuda ? ComputeType.Float32 : options.Precision ?? ComputeType.Float32;
        var cpuKv = options.KvPrecision ?? cpuCompute;
        var cpuSession = CreateSession(config, tensors, stage, maxContext, cpuCompute, cpuKv, options.QuantizedAccuracyLevel, cpuOptions);
        LogStageGraph(logger, stage.ToString(), DeviceSpec.Cpu.ToString(), Describe(cpuCompute, cpuKv), StageGraphBuilder.DescribeProjections(config, tensors, stage, options.QuantizedAccuracyLevel));
        return new StageRuntime(config, stage, cpuSession, cpuCompute, cpuKv, DeviceSpec.Cpu, maxContext, logger);
    }

    private static string Describe(ComputeType compute, ComputeType kv) => kv == compute ? compute.ToString() : $"{compute}, KV {kv}";

    /// <summary>Writes the stage graph with its weights as external data into a scratch folder under the temporary
    /// directory ($TMPDIR), creates the session from it and deletes the folder: ONNX Runtime has its own copy then.
    /// The folder needs about the stage's weight size of disk while loading.</summary>
    private static InferenceSession CreateSession(LlamaConfig config, ITensorSource tensors, StageSpec stage, int maxContext,
        ComputeType compute, ComputeType kv, int accuracyLevel, SessionOptions options)
    {
        string scratch = Path.Combine(Path.GetTempPath(), $"strata-stage-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            string model = StageGraphBuilder.Write(config, tensors, stage, maxContext, compute, scratch, accuracyLevel, kv);
            return new InferenceSession(model, options);
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); }
            catch (IOException) { /* best effort: it is in the temporary directory */ }
        }
    }

    private static SessionOptions NewSessionOptions()
    {
        var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        so.DisablePerSessionThreads(); // use the process-wide pool of OrtEnvironment
        return so;
    }

    /// <summary>Allocates a KV pool of <paramref name="slots"/> sequences for this stage.</summary>
    public KvPool CreateKvPool(int slots)
    {
        if (slots < 1) throw new ArgumentOutOfRangeException(nameof(slots), "a KV pool needs at least one slot");
        var (element, size) = Kv == ComputeType.Float16 ? (TensorElementType.Float16, 2) : (TensorElementType.Float, 4);
        KvMemory memory = Device.IsCuda ? new CudaKvMemory(_session, Device.Index, element) : new HostKvMemory();
        return new KvPool(memory, Stage.LayerCount, slots, Config.NumKvHeads, MaxContext, StageGraphBuilder.AttentionHeadDim(Config), element, size);
    }

    /// <summary>KV bytes one sequence position costs in this stage.</summary>
    public long KvBytesPerPosition => (long)Config.NumKvHeads * StageGraphBuilder.AttentionHeadDim(Config) * Activations.ElementSize(Kv) * Stage.LayerCount * 2;

    /// <summary>Runs one step.</summary>
    /// <param name="pool">This stage's KV pool.</param>
    /// <param name="firstSlot">The first KV slot of the batch; rows use consecutive slots.</param>
    /// <param name="pastLengths">Positions already cached, per row.</param>
    /// <param name="tokens">New tokens per row (1 for decode; more than 1 only with a single row).</param>
    /// <param name="inputIds">First stage: rows * tokens ids.</param>
    /// <param name="hidden">Later stages: the previous stage's activations.</param>
    /// <param name="logits">Last stage: receives rows * vocab logits.</param>
    /// <returns>Activations for the next stage, or (last stage) null with <paramref name="logits"/> filled.</returns>
    public unsafe Activations? Run(KvPool pool, int firstSlot, ReadOnlySpan<int> pastLengths, int tokens,
        ReadOnlySpan<int> inputIds, Activations? hidden, Span<float> logits)
    {
        int rows = pastLengths.Length;
        CheckStep(rows, tokens, pastLengths, inputIds, hidden, logits);

        var names = new List<string>(4 + 2 * Stage.LayerCount);
        var values = new List<OrtValue>(names.Capacity);
        var outputs = new List<OrtValue>(_outputNames.Length);
        var pins = new List<GCHandle>();
        // The last stage writes its logits straight into the caller's buffer (no per-step array: at a 32k
        // vocabulary even one row is a large-object allocation).
        fixed (float* logitsPtr = logits)
        {
            try
            {
                if (Stage.IsFirst)
                {
                    var ids = new long[rows * tokens];
                    for (int i = 0; i < ids.Length; i++) ids[i] = inputIds[i];
                    names.Add(StageGraphBuilder.InputIds);
                    values.Add(OrtValue.CreateTensorValueFromMemory(ids, [rows, tokens]));
                }
                else
                {
                    names.Add(StageGraphBuilder.HiddenIn);
                    values.Add(Pinned(hidden!.Data, [rows, tokens, Config.HiddenSize], pins));
                }

                var seqlens = new int[rows];
                int total = 0;
                for (int r = 0; r < rows; r++)
                {
                    seqlens[r] = pastLengths[r] + tokens - 1;
                    total = Math.Max(total, pastLengths[r] + tokens);
                }
                names.Add(StageGraphBuilder.SeqLensK);
                values.Add(OrtValue.CreateTensorValueFromMemory(seqlens, [rows]));
                names.Add(StageGraphBuilder.TotalSequenceLength);
                values.Add(OrtValue.CreateTensorValueFromMemory(new[] { total }, []));

                Activations? result = null;
                if (Stage.IsLast)
                {
                    long count = (long)rows * Config.VocabSize;
                    outputs.Add(OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float,
                        [rows, 1, Config.VocabSize], (IntPtr)logitsPtr, count * sizeof(float)));
                }
                else
                {
                    var data = new byte[(long)rows * tokens * Config.HiddenSize * Activations.ElementSize(Compute)];
                    result = new Activations(Compute, rows, tokens, Config.HiddenSize, data);
                    outputs.Add(Pinned(data, [rows, tokens, Config.HiddenSize], pins));
                }

                for (int l = 0; l < Stage.LayerCount; l++)
                {
                    var (k, v) = pool.View(l, firstSlot, rows);
                    names.Add(StageGraphBuilder.PastKey(Stage.FirstLayer + l));
                    values.Add(k);
                    names.Add(StageGraphBuilder.PastValue(Stage.FirstLayer + l));
                    values.Add(v);
                    outputs.Add(k); // present = past: the same buffer, written in place
                    outputs.Add(v);
                }

                _session.Run(_runOptions, names, values, _outputNames, outputs);
                return result;
            }
            finally
            {
                foreach (var v in values) v.Dispose();
                foreach (var o in outputs.Take(1)) o.Dispose(); // the KV outputs are the same objects as the inputs
                foreach (var p in pins) p.Free();
            }
        }
    }

    private void CheckStep(int rows, int tokens, ReadOnlySpan<int> pastLengths, ReadOnlySpan<int> inputIds, Activations? hidden, Span<float> logits)
    {
        if (rows < 1) throw new ArgumentException("a step needs at least one row");
        if (tokens < 1) throw new ArgumentException("a step needs at least one token per row");
        if (tokens > 1 && rows > 1)
            throw new ArgumentException("a multi-token (prefill) step runs one row at a time");
        foreach (int past in pastLengths)
        {
            if (past < 0) throw new ArgumentException($"past length {past} is negative");
            if (past + tokens > MaxContext) throw new ContextOverflowException(past + tokens, MaxContext);
        }
        if (Stage.IsFirst)
        {
            if (inputIds.Length != rows * tokens)
                throw new ArgumentException($"expected {rows * tokens} token ids, got {inputIds.Length}");
            foreach (int id in inputIds)
                if ((uint)id >= (uint)Config.VocabSize)
                    throw new ArgumentException($"token id {id} is outside the vocabulary (size {Config.VocabSize})");
        }
        else
        {
            if (hidden is null) throw new ArgumentException($"stage {Stage} needs activations from the previous stage");
            hidden.Validate(Compute, Config.HiddenSize);
            if (hidden.Rows != rows || hidden.Tokens != tokens)
                throw new ArgumentException($"activations are [{hidden.Rows}, {hidden.Tokens}] but the step is [{rows}, {tokens}]");
        }
        if (Stage.IsLast && logits.Length < rows * Config.VocabSize)
            throw new ArgumentException($"logits buffer holds {logits.Length} floats, needs {rows * Config.VocabSize}");
    }

    private OrtValue Pinned(byte[] data, long[] shape, List<GCHandle> pins)
    {
        var handle = GCHandle.Alloc(data, GCHandleType.Pinned);
        pins.Add(handle);
        var element = Compute == ComputeType.Float16 ? TensorElementType.Float16 : TensorElementType.Float;
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, element, shape, handle.AddrOfPinnedObject(), data.Length);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "CUDA execution provider for {Device} could not load ({Reason}); stage {Stage} falls back to the CPU (fp32)")]
    private static partial void LogCudaFallback(ILogger logger, string device, string stage, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stage {Stage} loaded on {Device} ({Compute}): {Projections}")]
    private static partial void LogStageGraph(ILogger logger, string stage, string device, string compute, string projections);
}
