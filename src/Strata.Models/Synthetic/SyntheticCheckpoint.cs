using System.Text.Json;
using System.Text.Json.Nodes;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Tokenization;

namespace Strata.Models.Synthetic;

/// <summary>
/// Writes deterministic random-weight Hugging Face Llama checkpoints of any shape: config.json,
/// generation_config.json, safetensors weights (single file or sharded with an index) and a tokenizer.
/// The same options always produce byte-identical files.
/// </summary>
public static class SyntheticCheckpoint
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes a checkpoint into <paramref name="outDir"/> (created if needed; earlier weight files there are replaced).</summary>
    /// <param name="o">Shape, dtype, seed and sharding.</param>
    /// <param name="outDir">Destination folder.</param>
    /// <param name="progress">Fraction of weight bytes written, 0 to 1.</param>
    /// <returns>The config written to config.json.</returns>
    public static LlamaConfig Write(SyntheticOptions o, string outDir, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentException.ThrowIfNullOrEmpty(outDir);
        var config = o.ToConfig();
        var tensors = LlamaTensors.Expected(config).ToList();
        if (o.Shards > tensors.Count)
            throw new ArgumentException($"{nameof(o.Shards)} {o.Shards} exceeds the {tensors.Count} tensors of this shape");

        Directory.CreateDirectory(outDir);
        RemoveOldWeights(outDir);

        var shards = SplitIntoShards(tensors, o);
        long total = tensors.Sum(t => Bytes(t, o.DType));
        long done = 0;
        progress?.Report(0);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < shards.Count; s++)
        {
            string file = o.Shards == 1 ? HfCheckpoint.SingleFile : $"model-{s + 1:D5}-of-{o.Shards:D5}.safetensors";
            var writer = new SafetensorsWriter(new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var t in shards[s])
            {
                writer.AddFloat32(t.Name, o.DType, t.Shape, SyntheticWeights.Filler(t, config, o.Seed));
                weightMap[t.Name] = file;
            }
            writer.Write(Path.Combine(outDir, file), (_, n) =>
            {
                done += n;
                progress?.Report((double)done / total);
            });
        }
        if (o.Shards > 1) WriteIndex(outDir, total, weightMap);

        WriteJson(Path.Combine(outDir, "config.json"), config.ToJson());
        WriteJson(Path.Combine(outDir, "generation_config.json"), new JsonObject
        {
            ["bos_token_id"] = 1,
            ["eos_token_id"] = new JsonArray(2),
        });
        SyntheticTokenizer.Write(outDir, o.Vocab);
        progress?.Report(1);
        return config;
    }

    /// <summary>Parameters (elements) of a checkpoint with these options.</summary>
    public static long ParameterCount(SyntheticOptions o) =>
        LlamaTensors.Expected(o.ToConfig()).Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b));

    private static long Bytes(ExpectedTensor t, TensorDType dtype) => t.Shape.Aggregate(1L, (a, b) => a * b) * dtype.Size();

    // A stale index would make HfCheckpoint read old shards instead of the new single file, and vice versa.
    private static void RemoveOldWeights(string dir)
    {
        foreach (var f in Directory.EnumerateFiles(dir, "model*.safetensors*"))
        {
            string name = Path.GetFileName(f);
            if (name == HfCheckpoint.SingleFile || name == HfCheckpoint.IndexFile ||
                (name.StartsWith("model-", StringComparison.Ordinal) && name.EndsWith(".safetensors", StringComparison.Ordinal)))
                File.Delete(f);
        }
    }

    /// <summary>Contiguous groups of tensors of about equal bytes, every group non-empty.</summary>
    private static List<List<ExpectedTensor>> SplitIntoShards(List<ExpectedTensor> tensors, SyntheticOptions o)
    {
        long total = tensors.Sum(t => Bytes(t, o.DType));
        var shards = new List<List<ExpectedTensor>> { new() };
        long before = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            int shard = shards.Count - 1;
            int tensorsLeft = tensors.Count - i;
            int shardsStillEmpty = o.Shards - shards.Count;
            bool full = before >= (shard + 1) * (total / o.Shards);
            if (shards[shard].Count > 0 && shardsStillEmpty > 0 && (full || tensorsLeft == shardsStillEmpty))
                shards.Add([]);
            shards[^1].Add(tensors[i]);
            before += Bytes(tensors[i], o.DType);
        }
        return shards;
    }

    private static void WriteIndex(string dir, long totalSize, SortedDictionary<string, string> weightMap)
    {
        var map = new JsonObject();
        foreach (var (name, file) in weightMap) map[name] = file;
        WriteJson(Path.Combine(dir, HfCheckpoint.IndexFile), new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = totalSize },
            ["weight_map"] = map,
        });
    }

    private static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(Indented) + "\n");
}
