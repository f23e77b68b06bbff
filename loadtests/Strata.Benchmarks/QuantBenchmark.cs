using System.Text.Json;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Models;
using Strata.Models.Packaging;
using Strata.Models.Quantization;

namespace Strata.Benchmarks;

/// <summary>
/// fp32 against int8, int4 and int4 with a quantized LM head (MatMulNBits) on the same weights: the source is
/// imported four times into a work
/// folder, each package is loaded as one stage graph, and decode tokens/s at batch 1 and 16 are measured in
/// interleaved rounds (median per configuration). Also reports each package's weight bytes and the resident memory
/// its stage added at load, and the peak while loading (Linux: VmHWM after resetting it).
/// </summary>
internal static class QuantBenchmark
{
    public static int Run(string[] argv)
    {
        var a = new Args(argv);
        string source = a.Get("--model") ?? throw new ArgumentException("--model is required (a Hugging Face folder)");
        int[] batches = a.Ints("--batches", [1, 16]);
        int threads = a.Int("--threads", 1);
        int steps = a.Int("--steps", 16);
        int promptTokens = a.Int("--prompt-tokens", 16);
        int rounds = a.Int("--rounds", 5);
        int block = a.Int("--block", QuantizationScheme.DefaultBlockSize);
        int level = a.Int("--accuracy-level", StageGraphBuilder.DefaultQuantizedAccuracyLevel);
        string work = a.Get("--work") ?? Path.Combine(Path.GetTempPath(), $"strata-bench-quant-{Environment.ProcessId}");

        var kinds = new (string Name, QuantizationScheme? Scheme)[]
        {
            ("fp32", null), ("int8", new(8, block)), ("int4", new(4, block)), ("int4+head", new(4, block) { QuantizedHead = true }),
        };
        var packages = kinds.Select(k => ModelImporter.Import(source, Path.Combine(work, k.Name),
            new ImportOptions { Quantization = k.Scheme, Overwrite = true })).ToArray();
        var c = packages[0].Config;
        int maxContext = promptTokens + steps * (rounds + 1) + 8;
        var spec = new StageSpec(0, c.NumLayers, c.NumLayers);
        Console.WriteLine($"model: {source}; hidden {c.HiddenSize}, {c.NumLayers} layers, vocab {c.VocabSize}, {packages[0].Manifest.ParameterCount / 1e6:F1}M parameters");
        Console.WriteLine($"threads: {threads}; batches {string.Join(", ", batches)}; block {block}, accuracy_level {level}; {promptTokens} prompt tokens; {steps} decode steps x {rounds} rounds");

        var loadedModels = new List<LoadedModel>();
        var runtimes = new List<StageRuntime>();
        var pools = new List<KvPool>();
        var memory = new List<(long Weights, long Resident, long Peak)>();
        try
        {
            // Memory in a fresh process per package: in one process later loads reuse the heap earlier ones grew.
            foreach (var p in packages) memory.Add(MeasureLoadInChild(p.Directory, threads, maxContext, level));
            foreach (var p in packages)
            {
                var loaded = ModelLoader.Open(p.Directory);
                loadedModels.Add(loaded);
                var runtime = StageRuntime.Load(c, loaded.Tensors, spec, new EngineOptions { IntraOpThreads = threads, MaxContext = maxContext, QuantizedAccuracyLevel = level });
                runtimes.Add(runtime);
                pools.Add(runtime.CreateKvPool(batches.Max()));
            }
            var logits = new float[batches.Max() * c.VocabSize];
            int configs = kinds.Length * batches.Length;
            var samples = Stats.Interleaved(configs, rounds, i =>
                BatchBenchmark.TokensPerSecond(runtimes[i / batches.Length], pools[i / batches.Length], batches[i % batches.Length], promptTokens, steps, logits));

            Console.WriteLine("    dtype  batch  tok/s(median)  min      max      vs fp32");
            var results = new List<object>();
            for (int i = 0; i < configs; i++)
            {
                int k = i / batches.Length, b = i % batches.Length;
                double med = Stats.Median(samples[i]), fp = Stats.Median(samples[b]);
                Console.WriteLine($"{kinds[k].Name,9}  {batches[b],5}  {med,13:F2}  {samples[i].Min(),7:F2}  {samples[i].Max(),7:F2}  {med / fp,7:F3}");
                results.Add(new { dtype = kinds[k].Name, batch = batches[b], tokens_per_second = med, min = samples[i].Min(), max = samples[i].Max(), ratio_to_fp32 = med / fp });
            }
            Console.WriteLine("    dtype  weights MB  resident added MB  peak at load MB");
            for (int k = 0; k < kinds.Length; k++)
                Console.WriteLine($"{kinds[k].Name,9}  {memory[k].Weights / 1e6,10:F1}  {memory[k].Resident / 1e6,17:F1}  {memory[k].Peak / 1e6,15:F1}");
            if (a.Get("--json") is string path)
            {
                File.WriteAllText(path, JsonSerializer.Serialize(new
                {
                    model = source, threads, steps, rounds, block, accuracy_level = level, results,
                    memory = kinds.Select((k, i) => new { dtype = k.Name, weight_bytes = memory[i].Weights, resident_added_bytes = memory[i].Resident, peak_at_load_bytes = memory[i].Peak }),
                }, new JsonSerializerOptions { WriteIndented = true }));
            }
        }
        finally
        {
            foreach (var p in pools) p.Dispose();
            foreach (var r in runtimes) r.Dispose();
            foreach (var l in loadedModels) l.Dispose();
            if (a.Get("--work") is null) Directory.Delete(work, recursive: true);
        }
        return 0;
    }

    /// <summary>
    /// <c>load-memory --package DIR</c>: loads the package as one stage in this (fresh) process and prints its weight
    /// bytes, the resident memory the load added and the peak during it.
    /// </summary>
    public static int RunLoadMemory(string[] argv)
    {
        var a = new Args(argv);
        string dir = a.Get("--package") ?? throw new ArgumentException("--package is required");
        using var loaded = ModelLoader.Open(dir);
        var c = loaded.Config;
        // The runtime's one-time start-up is not the package's memory.
        OrtEnvironment.Initialize(a.Int("--threads", 1));
        GC.Collect();
        long before = Resident.Current();
        Resident.ResetPeak();
        using var runtime = StageRuntime.Load(c, loaded.Tensors, new StageSpec(0, c.NumLayers, c.NumLayers), new EngineOptions
        {
            IntraOpThreads = a.Int("--threads", 1), MaxContext = a.Int("--max-context", 256), QuantizedAccuracyLevel = a.Int("--accuracy-level", 4),
        });
        GC.Collect();
        Console.WriteLine($"{loaded.Package!.Manifest.WeightFiles.Sum(f => f.Bytes)} {Resident.Current() - before} {Resident.Peak() - before}");
        return 0;
    }

    private static (long Weights, long Resident, long Peak) MeasureLoadInChild(string package, int threads, int maxContext, int level)
    {
        var start = new System.Diagnostics.ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { "load-memory", "--package", package, "--threads", $"{threads}", "--max-context", $"{maxContext}", "--accuracy-level", $"{level}" })
            start.ArgumentList.Add(arg);
        using var child = System.Diagnostics.Process.Start(start)!;
        string line = child.StandardOutput.ReadToEnd().Trim().Split('\n')[^1];
        child.WaitForExit();
        if (child.ExitCode != 0) throw new InvalidOperationException($"load-memory for {package} exited with {child.ExitCode}");
        long[] v = line.Split(' ').Select(x => long.Parse(x, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return (v[0], v[1], v[2]);
    }

    /// <summary>Resident set size from /proc/self/status (Linux); 0 elsewhere.</summary>
    private static class Resident
    {
        public static long Current() => Field("VmRSS:");

        public static long Peak() => Field("VmHWM:");

        /// <summary>Resets VmHWM to the current resident size (writing 5 to clear_refs).</summary>
        public static void ResetPeak()
        {
            try { File.WriteAllText("/proc/self/clear_refs", "5"); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }

        private static long Field(string name)
        {
            if (!File.Exists("/proc/self/status")) return 0;
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[name.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
    }
}
