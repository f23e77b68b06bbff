using System.Diagnostics;
using System.Text.Json;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;

namespace Strata.Benchmarks;

/// <summary>
/// Batch-1 decode tokens/s of the same model split into different stage counts, run back to back in one process.
/// Pipelines are measured in interleaved rounds so that machine noise hits every configuration alike; the figure
/// per configuration is the median over rounds. Also reports the memory-bandwidth ceiling for comparison.
/// </summary>
internal static class DecodeBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string model = a.Get("--model") ?? throw new ArgumentException("--model is required");
        int[] stageCounts = a.Ints("--stages", [1, 4]);
        int threads = a.Int("--threads", 1);
        int tokens = a.Int("--tokens", 32);
        int promptTokens = a.Int("--prompt-tokens", 16);
        int rounds = a.Int("--rounds", 5);

        using var loaded = ModelLoader.Open(model);
        var c = loaded.Config;
        var engine = new EngineOptions { IntraOpThreads = threads, MaxContext = promptTokens + tokens * (rounds + 1) + 8 };
        Console.WriteLine($"model: {loaded.Description}; hidden {c.HiddenSize}, {c.NumLayers} layers, vocab {c.VocabSize}");
        Console.WriteLine($"threads: {threads}; batch 1; {promptTokens} prompt tokens; {tokens} decode tokens x {rounds} rounds per configuration");

        var pipelines = stageCounts.Select(k => LocalPipeline.Load(c, loaded.Tensors, k, engine)).ToArray();
        long weightBytes = loaded.Package is { } package
            ? Strata.Models.Planning.ModelFootprint.From(package.Manifest, 4) is var f ? f.LayerBytes.Sum() + f.HeadBytes : 0
            : WeightBytesPerToken(c);
        List<double>[] samples;
        try
        {
            var prompt = Enumerable.Range(0, promptTokens).Select(i => 3 + i * 7 % (c.VocabSize - 3)).ToArray();
            samples = Stats.Interleaved(pipelines.Length, rounds, p => DecodeTokensPerSecond(pipelines[p], prompt, tokens));
        }
        finally
        {
            foreach (var p in pipelines) p.Dispose();
        }

        double bandwidth = BandwidthBenchmark.Measure(threads, 1L << 30);
        double ceiling = bandwidth * 1e9 / weightBytes;
        double baseline = Stats.Median(samples[0]);
        Console.WriteLine($"weights read per token: {weightBytes / 1e6:F1} MB; read bandwidth {bandwidth:F2} GB/s -> ceiling {ceiling:F1} tok/s");
        Console.WriteLine("stages  tok/s(median)  min     max     vs K={0}  % of bandwidth ceiling", stageCounts[0]);
        var results = new List<object>();
        for (int p = 0; p < stageCounts.Length; p++)
        {
            double med = Stats.Median(samples[p]);
            Console.WriteLine($"{stageCounts[p],6}  {med,13:F2}  {samples[p].Min(),6:F2}  {samples[p].Max(),6:F2}  {med / baseline,7:F3}  {100 * med / ceiling,6:F1}%");
            results.Add(new { stages = stageCounts[p], tokens_per_second = med, min = samples[p].Min(), max = samples[p].Max(), ratio_to_first = med / baseline });
        }
        if (a.Get("--json") is string path)
        {
            File.WriteAllText(path, JsonSerializer.Serialize(new
            {
                model = loaded.Description, threads, tokens, rounds, weight_bytes_per_token = weightBytes,
                read_bandwidth_gbps = bandwidth, bandwidth_ceiling_tokens_per_second = ceiling, results,
            }, new JsonSerializerOptions { WriteIndented = true }));
        }
        return 0;
    }

    private static double DecodeTokensPerSecond(LocalPipeline pipeline, int[] prompt, int tokens)
    {
        using var seq = pipeline.NewSequence();
        var logits = seq.Forward(prompt);
        int next = Sampler.ArgMax(logits);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < tokens; i++)
        {
            logits = seq.Forward([next]);
            next = Sampler.ArgMax(logits);
        }
        return tokens / sw.Elapsed.TotalSeconds;
    }

    /// <summary>fp32 bytes a decode step reads: every layer weight and the LM head; one embedding row only. (For a
    /// package, its layer and head files as stored, quantized or not.)</summary>
    private static long WeightBytesPerToken(Strata.Models.Config.LlamaConfig c)
    {
        long h = c.HiddenSize, q = (long)c.NumHeads * c.HeadDim, kv = (long)c.NumKvHeads * c.HeadDim, f = c.IntermediateSize;
        long perLayer = h * (q + 2 * kv) + q * h + 3 * h * f + 2 * h;
        return 4 * (perLayer * c.NumLayers + h * c.VocabSize + h);
    }
}
