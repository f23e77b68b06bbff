using System.Text.Json;
using System.Text.Json.Nodes;
using Strata.Models.Config;

namespace Strata.Models.Checkpoints;

/// <summary>
/// A Hugging Face Llama-family model folder: <c>config.json</c> plus <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>. Opening it validates the config and every expected tensor's presence and
/// shape, so later reads cannot fail on a malformed checkpoint.
/// </summary>
public sealed class HfCheckpoint : ITensorSource
{
    /// <summary>Name of the single-file checkpoint.</summary>
    public const string SingleFile = "model.safetensors";
    /// <summary>Name of the shard index of a sharded checkpoint.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private readonly SafetensorsTensorSource _source;

    private HfCheckpoint(string dir, LlamaConfig config, SafetensorsTensorSource source)
    {
        Directory = dir;
        Config = config;
        _source = source;
    }

    /// <summary>The model folder.</summary>
    public string Directory { get; }

    /// <summary>The parsed config.json.</summary>
    public LlamaConfig Config { get; }

    /// <summary>This checkpoint's tensors (the checkpoint is its own tensor source).</summary>
    public ITensorSource Tensors => this;

    /// <summary>The safetensors files this checkpoint reads.</summary>
    public IReadOnlyList<string> Files => _source.Files.Select(f => f.Path).ToArray();

    /// <inheritdoc />
    public IReadOnlyCollection<string> Names => _source.Names;

    /// <summary>True when <paramref name="dir"/> looks like a Hugging Face model folder.</summary>
    public static bool IsCheckpointFolder(string dir) =>
        File.Exists(Path.Combine(dir, "config.json")) &&
        (File.Exists(Path.Combine(dir, SingleFile)) || File.Exists(Path.Combine(dir, IndexFile)));

    /// <summary>Opens and validates a Hugging Face model folder.</summary>
    public static HfCheckpoint Open(string dir)
    {
        if (!System.IO.Directory.Exists(dir))
            throw new ModelFormatException(dir, null, "model folder not found");
        var config = LlamaConfig.Load(dir);
        var files = new List<SafetensorsFile>();
        try
        {
            var tensors = OpenTensors(dir, files);
            var checkpoint = new HfCheckpoint(dir, config, new SafetensorsTensorSource(files, tensors, dir));
            checkpoint.Validate();
            return checkpoint;
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    private static Dictionary<string, (SafetensorsFile, TensorInfo)> OpenTensors(string dir, List<SafetensorsFile> files)
    {
        var tensors = new Dictionary<string, (SafetensorsFile, TensorInfo)>(StringComparer.Ordinal);
        string index = Path.Combine(dir, IndexFile);
        string single = Path.Combine(dir, SingleFile);
        if (File.Exists(index))
        {
            var weightMap = ReadWeightMap(index);
            foreach (var shardName in weightMap.Values.Distinct(StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(dir, shardName);
                if (!File.Exists(shardPath))
                    throw new ModelFormatException(index, "weight_map",
                        $"shard '{shardName}' is listed but {shardPath} does not exist");
                files.Add(SafetensorsFile.Open(shardPath));
            }
            var byName = files.ToDictionary(f => Path.GetFileName(f.Path), StringComparer.Ordinal);
            foreach (var (tensor, shardName) in weightMap)
            {
                var shard = byName[shardName];
                if (!shard.Tensors.TryGetValue(tensor, out var info))
                    throw new ModelFormatException(shard.Path, tensor, $"listed in {IndexFile} but not present in this shard");
                tensors[tensor] = (shard, info);
            }
        }
        else if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            files.Add(file);
            foreach (var (name, info) in file.Tensors) tensors[name] = (file, info);
        }
        else
        {
            throw new ModelFormatException(dir, null, $"no {SingleFile} or {IndexFile} in the model folder");
        }
        return tensors;
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(File.ReadAllText(index));
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(index, null, $"invalid JSON: {e.Message}", e);
        }
        if (root?["weight_map"] is not JsonObject map)
            throw new ModelFormatException(index, "weight_map", "missing or not an object");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (tensor, node) in map)
        {
            if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
                throw new ModelFormatException(index, $"weight_map.{tensor}", "expected a shard file name");
            string shard = v.GetValue<string>();
            if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                throw new ModelFormatException(index, $"weight_map.{tensor}", $"shard name '{shard}' must be a plain file name");
            result[tensor] = shard;
        }
        return result;
    }

    private void Validate()
    {
        foreach (var expected in LlamaTensors.Expected(Config))
        {
            if (!_source.TryGet(expected.Name, out var info))
                throw new ModelFormatException(Where(expected.Name), expected.Name,
                    $"tensor is missing (config.json implies shape [{string.Join(", ", expected.Shape)}])");
            if (!info.Shape.SequenceEqual(expected.Shape))
                throw new ModelFormatException(info.File, expected.Name,
                    $"shape {info.ShapeText} does not match [{string.Join(", ", expected.Shape)}] implied by config.json");
            if (info.DType == TensorDType.U8)
                throw new ModelFormatException(info.File, expected.Name, "dtype U8 is not a weight dtype (F32, F16, BF16)");
        }
    }

    private string Where(string tensor) =>
        _source.Files.Count == 1 ? _source.Files[0].Path : Path.Combine(Directory, IndexFile);

    /// <inheritdoc />
    public bool TryGet(string name, out TensorInfo info) => _source.TryGet(name, out info);

    /// <inheritdoc />
    public void ReadFloat32(string name, Span<float> destination) => _source.ReadFloat32(name, destination);

    /// <inheritdoc />
    public void ReadRaw(string name, Span<byte> destination) => _source.ReadRaw(name, destination);

    /// <inheritdoc />
    public void Dispose() => _source.Dispose();
}
