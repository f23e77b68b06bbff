using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Strata.Benchmarks;

/// <summary>
/// Sustained memory read bandwidth: sums a buffer far larger than the caches with SIMD loads, on N threads.
/// Batch-1 decode reads every weight once per token, so bandwidth / weight bytes is its ceiling.
/// </summary>
internal static unsafe class BandwidthBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        int threads = a.Int("--threads", 1);
        long bytes = a.Int("--mib", 1024) * 1024L * 1024;
        double gbps = Measure(threads, bytes);
        Console.WriteLine($"read bandwidth: {gbps:F2} GB/s ({threads} thread(s), {bytes >> 20} MiB buffer, best of 5)");
        return 0;
    }

    /// <summary>Best-of-5 read bandwidth in GB/s (1e9 bytes per second).</summary>
    public static double Measure(int threads, long bytes)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            long n = bytes / sizeof(float);
            new Span<float>(p, (int)Math.Min(n, int.MaxValue)).Fill(1f);
            for (long i = int.MaxValue; i < n; i++) p[i] = 1f;
            double best = 0;
            for (int round = 0; round < 5; round++)
            {
                var sw = Stopwatch.StartNew();
                long per = n / threads / Vector<float>.Count * Vector<float>.Count;
                var sums = new float[threads];
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    var acc0 = Vector<float>.Zero; var acc1 = Vector<float>.Zero;
                    float* start = p + t * per;
                    int w = Vector<float>.Count;
                    for (long i = 0; i + 2 * w <= per; i += 2 * w)
                    {
                        acc0 += *(Vector<float>*)(start + i);
                        acc1 += *(Vector<float>*)(start + i + w);
                    }
                    sums[t] = Vector.Sum(acc0 + acc1);
                });
                sw.Stop();
                if (sums.Sum() <= 0) throw new InvalidOperationException("unexpected sum");
                best = Math.Max(best, per * threads * sizeof(float) / sw.Elapsed.TotalSeconds / 1e9);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(p);
        }
    }
}
