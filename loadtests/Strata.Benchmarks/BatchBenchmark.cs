using System.Diagnostics;
using System.Text.Json;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;

namespace Strata.Benchmarks;

/// <summary>
/// The engine alone: decode tokens/s of one stage graph holding the whole model at batch sizes 1 and N (default 16),
/// with no batcher, no grains and no network. Batch sizes are measured in interleaved rounds in one process and the
/// figure per size is the median; the ratio of batch N to batch 1 is what continuous batching can at best deliver.
/// </summary>
internal static class BatchBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        var (model, batches, threads, steps, promptTokens, rounds) = BatchRunArgs.Parse(a, promptTokens: 16);

        using var loaded = ModelLoader.Open(model);
        var c = loaded.Config;
        int maxContext = BatchRunArgs.MaxContext(promptTokens, steps, rounds);
        var spec = new StageSpec(0, c.NumLayers, c.NumLayers);
        using var runtime = StageRuntime.Load(c, loaded.Tensors, spec, new EngineOptions { IntraOpThreads = threads, MaxContext = maxContext });
        int widest = batches.Max();
        using var pool = runtime.CreateKvPool(widest);
        Console.WriteLine($"model: {loaded.Description}; hidden {c.HiddenSize}, {c.NumLayers} layers, vocab {c.VocabSize}");
        Console.WriteLine($"threads: {threads}; batches {string.Join(", ", batches)}; {promptTokens} prompt tokens; {steps} decode steps x {rounds} rounds");

        var logits = new float[widest * c.VocabSize];
        var samples = Stats.Interleaved(batches.Length, rounds, b => TokensPerSecond(runtime, pool, batches[b], promptTokens, steps, logits));

        double baseline = Stats.Median(samples[0]);
        Console.WriteLine("batch  tok/s(median)  min      max      vs batch {0}", batches[0]);
        var results = new List<object>();
        for (int b = 0; b < batches.Length; b++)
        {
            double med = Stats.Median(samples[b]);
            Console.WriteLine($"{batches[b],5}  {med,13:F2}  {samples[b].Min(),7:F2}  {samples[b].Max(),7:F2}  {med / baseline,7:F3}");
            results.Add(new { batch = batches[b], tokens_per_second = med, min = samples[b].Min(), max = samples[b].Max(), ratio_to_first = med / baseline });
        }
        if (a.Get("--json") is string path)
            File.WriteAllText(path, JsonSerializer.Serialize(new { model = loaded.Description, threads, steps, rounds, results },
                new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>The flags of the batch-decode benchmarks: model, batch sizes, threads, decode steps, prompt tokens, rounds.</summary>
    internal sealed record BatchRunArgs(string Model, int[] Batches, int Threads, int Steps, int PromptTokens, int Rounds)
    {
        public static BatchRunArgs Parse(Args a, int promptTokens) => new(
            a.Get("--model") ?? throw new ArgumentException("--model is required"), a.Ints("--batches", [1, 16]), a.Int("--threads", 1),
            a.Int("--steps", 16), a.Int("--prompt-tokens", promptTokens), a.Int("--rounds", 5));

        /// <summary>KV positions a run needs: the prompt and every round's steps (the warm-up included).</summary>
        public static int MaxContext(int promptTokens, int steps, int rounds) => promptTokens + steps * (rounds + 1) + 8;
    }

    /// <summary>Prefills <paramref name="rows"/> sequences (slots 0..rows-1), then times <paramref name="steps"/>
    /// decode steps that run all rows as one batch.</summary>
    internal static double TokensPerSecond(StageRuntime runtime, KvPool pool, int rows, int promptTokens, int steps, float[] logits)
    {
        int vocab = runtime.Config.VocabSize;
        var next = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            var prompt = Enumerable.Range(0, promptTokens).Select(i => 3 + (i * 7 + r * 13) % (vocab - 3)).ToArray();
            runtime.Run(pool, r, [0], promptTokens, prompt, null, logits);
            next[r] = Sampler.ArgMax(logits.AsSpan(0, vocab));
        }
        var past = Enumerable.Repeat(promptTokens, rows).ToArray();
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            runtime.Run(pool, 0, past, 1, next, null, logits);
            for (int r = 0; r < rows; r++)
            {
                next[r] = Sampler.ArgMax(logits.AsSpan(r * vocab, vocab));
                past[r]++;
            }
        }
        return rows * steps / sw.Elapsed.TotalSeconds;
    }
}
