using System.Text.Json;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// Writes a model (a Hugging Face folder or a Strata package) as a GGUF file that llama.cpp loads: llama.cpp's tensor
/// names, q and k rows permuted for its RoPE kernel (llama architecture), norms and biases in F32, the projections,
/// embedding and head in the chosen type (F16 for a matrix whose rows are not a whole number of blocks, as llama.cpp's
/// converter falls back), the shape under <c>llama.*</c> / <c>qwen2.*</c> and the tokenizer under <c>tokenizer.ggml.*</c>.
/// </summary>
public static class GgufExporter
{
    /// <summary>Types <c>strata export-gguf --type</c> accepts, by their llama.cpp spelling.</summary>
    public static readonly IReadOnlyDictionary<string, GgmlType> Types = new Dictionary<string, GgmlType>(StringComparer.OrdinalIgnoreCase)
    {
        ["f32"] = GgmlType.F32,
        ["f16"] = GgmlType.F16,
        ["bf16"] = GgmlType.BF16,
        ["q8_0"] = GgmlType.Q8_0,
        ["q4_0"] = GgmlType.Q4_0,
        ["q4_k"] = GgmlType.Q4_K,
    };

    /// <summary>Exports the model at <paramref name="modelPath"/> (a package or a Hugging Face folder).</summary>
    public static void Export(string modelPath, string outFile, GgmlType type)
    {
        using var model = ModelLoader.Open(modelPath);
        ITensorSource tensors = model.Tensors;
        using var dequantized = model.Package?.Manifest.Quant is not null ? new DequantizedTensorSource(tensors, model.Config) : null;
        Export(model.Config, dequantized ?? tensors, model.TokenizerDirectory, Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath)), outFile, type);
    }

    /// <summary>Exports <paramref name="tensors"/> of shape <paramref name="config"/> with the tokenizer in <paramref name="tokenizerDir"/>.</summary>
    public static void Export(LlamaConfig config, ITensorSource tensors, string tokenizerDir, string name, string outFile, GgmlType type)
    {
        string arch = GgufMetadata.Architectures.FirstOrDefault(a => a.Value == config.Architecture).Key
            ?? throw new ModelFormatException(outFile, null, $"architecture {config.Architecture} has no GGUF export (LlamaForCausalLM, Qwen2ForCausalLM)");
        var w = new GgufWriter();
        w.Add("general.architecture", arch);
        w.Add("general.name", name);
        w.Add("general.file_type", FileType(type));
        if (type.IsQuantized()) w.Add("general.quantization_version", 2u);
        string p = arch + ".";
        w.Add(p + "context_length", (uint)config.MaxPositionEmbeddings);
        w.Add(p + "embedding_length", (uint)config.HiddenSize);
        w.Add(p + "block_count", (uint)config.NumLayers);
        w.Add(p + "feed_forward_length", (uint)config.IntermediateSize);
        w.Add(p + "attention.head_count", (uint)config.NumHeads);
        w.Add(p + "attention.head_count_kv", (uint)config.NumKvHeads);
        w.Add(p + "rope.freq_base", (float)config.RopeTheta);
        w.Add(p + "attention.layer_norm_rms_epsilon", (float)config.RmsNormEps);
        w.Add(p + "rope.dimension_count", (uint)config.HeadDim);
        if (config.HeadDim * config.NumHeads != config.HiddenSize)
        {
            w.Add(p + "attention.key_length", (uint)config.HeadDim);
            w.Add(p + "attention.value_length", (uint)config.HeadDim);
        }
        w.Add(p + "vocab_size", (uint)config.VocabSize);
        if (config.RopeScaling is not null)
            throw new ModelFormatException(outFile, "rope_scaling", "Llama 3 RoPE scaling has no GGUF export yet");
        GgufTokenizerExport.AddTokenizer(w, tokenizerDir, config);
        foreach (var t in LlamaTensors.Expected(config)) AddTensor(w, config, tensors, t, arch, type);
        w.Write(outFile);
    }

    private static void AddTensor(GgufWriter w, LlamaConfig config, ITensorSource tensors, ExpectedTensor t, string arch, GgmlType type)
    {
        string name = GgufTensorNames.FromHf(t.Name)!;
        var stored = t.Shape.Length == 1 ? GgmlType.F32
            : t.Shape[1] % type.BlockElements() == 0 ? type
            : type == GgmlType.F32 ? GgmlType.F32 : GgmlType.F16;
        w.AddTensor(name, stored, t.Shape, () =>
        {
            var values = new float[t.Shape.Aggregate(1L, (a, b) => a * b)];
            tensors.ReadFloat32(t.Name, values);
            if (GgufTensorNames.PermutedHeads(t.Name, config, arch) is int heads)
            {
                int rows = (int)t.Shape[0], cols = t.Shape.Length == 2 ? (int)t.Shape[1] : 1;
                values = GgufPermute.Permute<float>(values, rows, cols, heads);
            }
            return GgmlEncoder.Encode(stored, values);
        });
    }

    // llama.cpp's llama_ftype numbering.
    private static uint FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q8_0 => 7,
        GgmlType.Q4_K => 14,
        GgmlType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };
}

/// <summary>A Hugging Face tokenizer.json (and tokenizer_config.json) as GGUF <c>tokenizer.ggml.*</c> metadata.</summary>
internal static class GgufTokenizerExport
{
    public static void AddTokenizer(GgufWriter w, string dir, LlamaConfig config)
    {
        string path = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(path)) throw new ModelFormatException(path, null, "file not found (a GGUF export needs tokenizer.json)");
        // The loader's checks name the field at fault; what passes them has the fields read below.
        Tokenization.TokenizerLoader.Load(dir);
        try
        {
            Add(w, dir, path, config);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw new ModelFormatException(path, null, $"cannot be written as GGUF metadata: {e.Message}", e);
        }
    }

    private static void Add(GgufWriter w, string dir, string path, LlamaConfig config)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        var tokens = new string[config.VocabSize];
        foreach (var entry in model.GetProperty("vocab").EnumerateObject())
        {
            int id = entry.Value.GetInt32();
            if (id >= 0 && id < tokens.Length) tokens[id] = entry.Name;
        }
        var special = new HashSet<int>();
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in added.EnumerateArray())
            {
                int id = a.GetProperty("id").GetInt32();
                if (id < 0 || id >= tokens.Length) continue;
                tokens[id] = a.GetProperty("content").GetString()!;
                if (a.TryGetProperty("special", out var s) && s.GetBoolean()) special.Add(id);
            }
        }
        for (int i = 0; i < tokens.Length; i++) tokens[i] ??= $"[PAD{i}]";
        var merges = new List<string>();
        foreach (var m in model.GetProperty("merges").EnumerateArray())
            merges.Add(m.ValueKind == JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}");
        bool byteLevel = root.GetRawText().Contains("\"ByteLevel\"", StringComparison.Ordinal);
        string? unk = model.TryGetProperty("unk_token", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;

        var types = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            types[i] = tokens[i] == unk ? 2
                : special.Contains(i) ? 3
                : !byteLevel && tokens[i].Length == 6 && tokens[i].StartsWith("<0x", StringComparison.Ordinal) && tokens[i].EndsWith('>') ? 6
                : 1;
        }
        if (byteLevel)
        {
            w.Add("tokenizer.ggml.model", "gpt2");
            string raw = root.GetRawText();
            w.Add("tokenizer.ggml.pre", raw.Contains("\\\\p{N}{1,3}", StringComparison.Ordinal) ? "llama-bpe"
                : raw.Contains("\\\\p{N}|", StringComparison.Ordinal) ? "qwen2" : "default");
            w.Add("tokenizer.ggml.tokens", tokens);
            w.Add("tokenizer.ggml.token_type", types);
            w.Add("tokenizer.ggml.merges", merges.ToArray());
        }
        else
        {
            w.Add("tokenizer.ggml.model", "llama");
            w.Add("tokenizer.ggml.tokens", tokens);
            w.Add("tokenizer.ggml.scores", ScoresFromMerges(tokens, types, merges));
            w.Add("tokenizer.ggml.token_type", types);
        }
        var settings = ReadTokenizerConfig(dir);
        int? IdOf(string? token) => token is null ? null : Array.IndexOf(tokens, token) is int i and >= 0 ? i : null;
        if ((IdOf(settings.Bos) ?? config.BosTokenId) is int bos) w.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if ((IdOf(settings.Eos) ?? (config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null)) is int eos) w.Add("tokenizer.ggml.eos_token_id", (uint)eos);
        if (IdOf(unk) is int unkId) w.Add("tokenizer.ggml.unknown_token_id", (uint)unkId);
        w.Add("tokenizer.ggml.add_bos_token", settings.AddBos ?? !byteLevel);
        w.Add("tokenizer.ggml.add_eos_token", settings.AddEos ?? false);
        string jinja = Path.Combine(dir, "chat_template.jinja");
        string? template = File.Exists(jinja) ? File.ReadAllText(jinja) : settings.ChatTemplate;
        if (template is not null) w.Add("tokenizer.chat_template", template);
    }

    /// <summary>
    /// Sentencepiece-style scores that reproduce the merge order: the piece made by merge rank r scores -r (its first
    /// merge), so merges derived back from the scores come in the same order; other normal pieces score below all.
    /// </summary>
    internal static float[] ScoresFromMerges(string[] tokens, int[] types, IReadOnlyList<string> merges)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) ids.TryAdd(tokens[i], i);
        var scores = new float[tokens.Length];
        var set = new bool[tokens.Length];
        for (int r = 0; r < merges.Count; r++)
        {
            string piece = merges[r].Replace(" ", "", StringComparison.Ordinal);
            if (ids.TryGetValue(piece, out int id) && !set[id])
            {
                scores[id] = -r;
                set[id] = true;
            }
        }
        for (int i = 0; i < tokens.Length; i++)
        {
            if (!set[i]) scores[i] = types[i] == 1 && tokens[i].Length > 1 ? -1e9f - i : 0;
        }
        return scores;
    }

    private sealed record TokenizerConfig(string? Bos, string? Eos, bool? AddBos, bool? AddEos, string? ChatTemplate);

    private static TokenizerConfig ReadTokenizerConfig(string dir)
    {
        string path = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(path)) return new TokenizerConfig(null, null, null, null, null);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var r = doc.RootElement;
        string? Token(string key) => r.TryGetProperty(key, out var v) ? v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        } : null;
        bool? Flag(string key) => r.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
        string? template = r.TryGetProperty("chat_template", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return new TokenizerConfig(Token("bos_token"), Token("eos_token"), Flag("add_bos_token"), Flag("add_eos_token"), template);
    }
}
