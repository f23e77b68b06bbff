using System.Numerics;
using System.Runtime.InteropServices;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Grains;
using Strata.Models.Config;
using Strata.Models.Planning;

namespace Strata.Hosting.Calibration;

/// <summary>
/// The silo's start-up measurement for the planner (well under 2 s on a CPU): memory read bandwidth on the silo's
/// threads, and the step time of one decoder layer of <see cref="ReferenceConfig"/>'s shape at batch 1 and batch 16,
/// built and run the way the silo's stages are (same device, threads and precision; on CUDA the same graph with the
/// CUDA execution provider). The result is advertised in the silo's metadata (<see cref="StrataMetadata.Calibration"/>).
/// </summary>
/// <remarks>The bandwidth pass reads host memory. On a GPU that is the slower memory, so the planner goes by the
/// reference layer's own time per byte, which <see cref="SiloCalibration.SecondsPerByte"/> takes whenever it is the
/// lower of the two.</remarks>
public static class SiloCalibrator
{
    /// <summary>Read buffer: larger than the last-level caches of the machines Strata runs on.</summary>
    private const long BandwidthBytes = 128L << 20;
    private const int BandwidthRounds = 3;
    private const int Warmup = 2;
    private const int Runs = 7;
    private const int PastLength = 16;

    /// <summary>The reference shape: a layer of a ~100M-parameter Llama (hidden 768, 12 heads of 64 with 4 KV heads,
    /// MLP 2048; about 29 MB in fp32). The stage measured is the middle of three layers: no embedding, no head.</summary>
    public static LlamaConfig ReferenceConfig { get; } = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 768, IntermediateSize = 2048, NumLayers = 3, NumHeads = 12,
        NumKvHeads = 4, HeadDim = 64, VocabSize = 256, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000,
        AttentionBias = false, TieWordEmbeddings = false,
    };

    /// <summary>Measures this silo as <paramref name="options"/> configure its stages.</summary>
    /// <param name="options">Device, threads and precision of the silo's stages.</param>
    /// <param name="time">Clock for the measurements; the system's by default.</param>
    /// <exception cref="InvalidOperationException">The reference layer could not be built or run on the device;
    /// the message names the device and says how to start without calibration.</exception>
    public static SiloCalibration Measure(StrataSiloOptions options, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        time ??= TimeProvider.System;
        int threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        var buffer = new float[BandwidthBytes / sizeof(float)];
        buffer.AsSpan().Fill(1f);
        double bandwidth = ReadBandwidth(buffer, threads, time);
        var (bytes, flops, t1, t16) = LayerTimes(options, time, buffer);
        return new SiloCalibration(bandwidth, bytes, flops, t1, t16);
    }

    /// <summary>Best read bandwidth, bytes per second, over a few passes through a buffer on <paramref name="threads"/> threads.</summary>
    private static double ReadBandwidth(float[] buffer, int threads, TimeProvider time)
    {
        int width = Vector<float>.Count;
        long per = buffer.Length / threads / (2 * width) * (2 * width);
        double best = 0;
        for (int round = 0; round < BandwidthRounds; round++)
        {
            var sums = new float[threads];
            long start = time.GetTimestamp();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var span = MemoryMarshal.Cast<float, Vector<float>>(buffer.AsSpan((int)(t * per), (int)per));
                Vector<float> a = Vector<float>.Zero, b = Vector<float>.Zero;
                for (int i = 0; i + 1 < span.Length; i += 2)
                {
                    a += span[i];
                    b += span[i + 1];
                }
                sums[t] = Vector.Sum(a + b);
            });
            double seconds = time.GetElapsedTime(start).TotalSeconds;
            if (sums.Sum() <= 0) throw new InvalidOperationException("bandwidth pass read wrong values");
            if (seconds > 0) best = Math.Max(best, per * threads * sizeof(float) / seconds);
        }
        return best > 0 ? best : throw new InvalidOperationException("bandwidth pass took no measurable time");
    }

    private static (long Bytes, long Flops, double Batch1, double Batch16) LayerTimes(StrataSiloOptions options, TimeProvider time, float[] flush)
    {
        var config = ReferenceConfig;
        var device = DeviceSpec.Parse(options.Device);
        ComputeType? precision = options.Precision switch { "fp32" => ComputeType.Float32, "fp16" => ComputeType.Float16, _ => null };
        var engine = new EngineOptions { Device = device, IntraOpThreads = options.Threads, MaxContext = config.MaxPositionEmbeddings, Precision = precision };
        using var tensors = new RandomTensors(config, seed: 1);
        StageRuntime runtime;
        try
        {
            runtime = StageRuntime.Load(config, tensors, new StageSpec(1, 2, config.NumLayers), engine);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidOperationException(
                $"calibration could not build the reference layer on {device}: {e.Message}; fix the device, or start the silo with --calibrate false (and --speed N)", e);
        }
        using (runtime)
        using (var pool = runtime.CreateKvPool(SiloCalibration.BigBatch))
        {
            long parameters = LlamaTensors.Expected(config).Where(t => t.Layer == 1).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));
            long bytes = parameters * Activations.ElementSize(runtime.Compute);
            return (bytes, ModelFootprint.LayerFlopsOf(config), Step(runtime, pool, 1, time, flush), Step(runtime, pool, SiloCalibration.BigBatch, time, flush));
        }
    }

    /// <summary>Median step time of the layer for <paramref name="rows"/> rows of one token, seconds.</summary>
    private static double Step(StageRuntime runtime, KvPool pool, int rows, TimeProvider time, float[] flush)
    {
        int hidden = runtime.Config.HiddenSize;
        var values = new float[rows * hidden];
        var rng = new Random(rows);
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.NextDouble() - 0.5);
        var input = new Activations(ComputeType.Float32, rows, 1, hidden, MemoryMarshal.AsBytes(values.AsSpan()).ToArray()).ConvertTo(runtime.Compute);
        var past = Enumerable.Repeat(PastLength, rows).ToArray();
        var seconds = new double[Runs];
        for (int run = -Warmup; run < Runs; run++)
        {
            // A model's layers do not fit in the caches, so each is read from memory every step; the one reference
            // layer would stay cached between runs. Reading a buffer larger than the caches evicts it.
            if (Sum(flush) <= 0) throw new InvalidOperationException("cache flush read wrong values");
            long start = time.GetTimestamp();
            _ = runtime.Run(pool, 0, past, 1, [], input, []);
            if (run >= 0) seconds[run] = time.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(seconds);
        return Math.Max(seconds[Runs / 2], 1e-7);
    }

    private static float Sum(float[] buffer)
    {
        var span = MemoryMarshal.Cast<float, Vector<float>>(buffer.AsSpan());
        var acc = Vector<float>.Zero;
        int line = Math.Max(1, 64 / (Vector<float>.Count * sizeof(float))); // one load per 64-byte cache line brings it in
        for (int i = 0; i < span.Length; i += line) acc += span[i];
        return Vector.Sum(acc);
    }
}
