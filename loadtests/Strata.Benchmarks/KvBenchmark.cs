using System.Globalization;
using System.Text.Json;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Models;

namespace Strata.Benchmarks;

/// <summary>
/// The KV cache's element type: one stage graph holding the whole model with an fp32 and with an fp16 KV cache (fp32
/// compute in both), side by side in one process. Reports the KV bytes per position and how many sessions of the
/// given context fit in a memory budget after the weights, and decode tokens/s at each batch size, after a prompt
/// long enough that attention over the cache counts (interleaved rounds, medians).
/// </summary>
internal static class KvBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        var (model, batches, threads, steps, promptTokens, rounds) = BatchBenchmark.BatchRunArgs.Parse(a, promptTokens: 192);
        int context = a.Int("--context", 1024);
        long budget = (long)(double.Parse(a.Get("--budget-gb") ?? "4", CultureInfo.InvariantCulture) * (1L << 30));

        using var loaded = ModelLoader.Open(model);
        var c = loaded.Config;
        int maxContext = BatchBenchmark.BatchRunArgs.MaxContext(promptTokens, steps, rounds);
        var spec = new StageSpec(0, c.NumLayers, c.NumLayers);
        ComputeType[] kinds = [ComputeType.Float32, ComputeType.Float16];
        var runtimes = kinds.Select(k => StageRuntime.Load(c, loaded.Tensors, spec,
            new EngineOptions { IntraOpThreads = threads, MaxContext = maxContext, KvPrecision = k })).ToArray();
        try
        {
            int widest = batches.Max();
            var pools = runtimes.Select(r => r.CreateKvPool(widest)).ToArray();
            long weights = loaded.Tensors.Names.Sum(n => loaded.Tensors.TryGet(n, out var info) ? info.ElementCount * 4 : 0);
            Console.WriteLine($"model: {loaded.Description}; {c.NumLayers} layers, {c.NumKvHeads} KV heads; weights {weights / 1e6:F1} MB (fp32)");
            Console.WriteLine($"threads: {threads}; batches {string.Join(", ", batches)}; {promptTokens} prompt tokens; {steps} decode steps x {rounds} rounds");
            var logits = new float[widest * c.VocabSize];
            int n = kinds.Length * batches.Length;
            var samples = Stats.Interleaved(n, rounds, i =>
                BatchBenchmark.TokensPerSecond(runtimes[i / batches.Length], pools[i / batches.Length], batches[i % batches.Length], promptTokens, steps, logits));

            var results = new List<object>();
            Console.WriteLine($"kv    bytes/position  sessions of {context} in {budget / (double)(1L << 30):0.##} GB  " + string.Join("  ", batches.Select(b => $"tok/s b{b}")));
            for (int k = 0; k < kinds.Length; k++)
            {
                long perPosition = runtimes[k].KvBytesPerPosition;
                long sessions = Math.Max(0, (budget - weights) / (perPosition * context));
                var speeds = batches.Select((b, j) => Stats.Median(samples[k * batches.Length + j])).ToArray();
                Console.WriteLine($"{(kinds[k] == ComputeType.Float16 ? "fp16" : "fp32"),-4}  {perPosition,14}  {sessions,26}  " +
                    string.Join("  ", speeds.Select(s => $"{s,9:F1}")));
                results.Add(new
                {
                    kv = kinds[k] == ComputeType.Float16 ? "fp16" : "fp32",
                    kv_bytes_per_position = perPosition,
                    sessions_in_budget = sessions,
                    tokens_per_second = batches.Zip(speeds).ToDictionary(p => $"b{p.First}", p => p.Second),
                });
            }
            for (int j = 0; j < batches.Length; j++)
                Console.WriteLine($"fp16 / fp32 at batch {batches[j]}: {Stats.Median(samples[batches.Length + j]) / Stats.Median(samples[j]):F3}");
            foreach (var p in pools) p.Dispose();
            if (a.Get("--json") is string path)
                File.WriteAllText(path, JsonSerializer.Serialize(new { model = loaded.Description, threads, prompt_tokens = promptTokens, steps, rounds, context, budget, results },
                    new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        finally
        {
            foreach (var r in runtimes) r.Dispose();
        }
    }
}
