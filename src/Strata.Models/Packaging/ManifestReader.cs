using System.Text.Json;
using System.Text.Json.Nodes;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>Reads a manifest's JSON into a <see cref="PackageManifest"/>; every error names the manifest and the field.</summary>
internal sealed class ManifestReader(string where)
{
    public PackageManifest Read(JsonObject root)
    {
        long version = Long(root, "format_version", "format_version");
        if (version != PackageManifest.CurrentFormatVersion)
            throw Error("format_version", $"version {version} is not supported (this Strata reads {PackageManifest.CurrentFormatVersion}); re-import the model");
        string name = Str(root, "name", "name");
        string architecture = Str(root, "architecture", "architecture");
        string dtypeText = Str(root, "dtype", "dtype");
        if (!TensorDTypes.TryParseUser(dtypeText, out var dtype))
            throw Error("dtype", $"unknown dtype '{dtypeText}' (expected fp32, fp16 or bf16)");
        string quantization = root["quantization"] is null ? "none" : Str(root, "quantization", "quantization");
        var config = ReadConfig(Obj(root, "config", "config"));
        var quant = ReadQuantization(root, quantization, config);
        if (architecture != config.Architecture)
            throw Error("architecture", $"'{architecture}' differs from config.architectures '{config.Architecture}'");

        var layersNode = root["layers"] as JsonArray ?? throw Error("layers", "missing or not an array");
        if (layersNode.Count != config.NumLayers)
            throw Error("layers", $"lists {layersNode.Count} layers but config.num_hidden_layers is {config.NumLayers}");
        var layers = new List<PackageLayer>();
        for (int i = 0; i < layersNode.Count; i++)
        {
            string path = $"layers[{i}]";
            var o = layersNode[i] as JsonObject ?? throw Error(path, "expected an object");
            long index = Long(o, "index", path + ".index");
            if (index != i) throw Error(path + ".index", $"is {index}; layers must be listed in order from 0");
            layers.Add(new PackageLayer(i, FileEntry(o, path)));
        }

        var filesNode = root["files"] as JsonArray ?? throw Error("files", "missing or not an array");
        var files = filesNode.Select((n, i) => FileEntry(n as JsonObject ?? throw Error($"files[{i}]", "expected an object"), $"files[{i}]")).ToList();

        return new PackageManifest
        {
            FormatVersion = (int)version,
            Name = name,
            Config = config,
            DType = dtype,
            Quant = quant,
            Source = ReadSource(Obj(root, "source", "source")),
            Embedding = FileEntry(Obj(root, "embedding", "embedding"), "embedding"),
            Layers = layers,
            Head = FileEntry(Obj(root, "head", "head"), "head"),
            Files = files,
        };
    }

    private QuantizationScheme? ReadQuantization(JsonObject root, string quantization, LlamaConfig config)
    {
        if (quantization == "none")
        {
            if (root["quantization_scheme"] is not null) throw Error("quantization_scheme", "is present but quantization is none");
            return null;
        }
        if (QuantizationScheme.ParseBits(quantization) is not int bits || quantization != $"int{bits}")
            throw Error("quantization", $"'{quantization}' is not supported by this version of Strata (none, int8 or int4)");
        var o = Obj(root, "quantization_scheme", "quantization_scheme");
        if (Long(o, "bits", "quantization_scheme.bits") != bits)
            throw Error("quantization_scheme.bits", $"differs from quantization '{quantization}'");
        long block = Long(o, "block_size", "quantization_scheme.block_size");
        if (o["zero_points"] is not JsonValue zv || zv.GetValueKind() != JsonValueKind.True)
            throw Error("quantization_scheme.zero_points", "must be true (this Strata writes and reads asymmetric blocks with zero points)");
        if (Str(o, "layout", "quantization_scheme.layout") != "MatMulNBits")
            throw Error("quantization_scheme.layout", "must be MatMulNBits");
        var layersNode = o["float_layers"] as JsonArray ?? throw Error("quantization_scheme.float_layers", "missing or not an array");
        var floatLayers = layersNode.Select((n, i) => n is JsonValue v && v.TryGetValue(out int x) ? x
            : throw Error($"quantization_scheme.float_layers[{i}]", "expected a layer index")).ToList();
        bool head = o["quantized_head"] is JsonValue hv && hv.GetValueKind() is JsonValueKind.True or JsonValueKind.False
            ? hv.GetValue<bool>()
            : throw Error("quantization_scheme.quantized_head", "expected true or false");
        if (!BlockQuantizer.SupportedBlockSizes.Contains((int)Math.Min(block, int.MaxValue)))
            throw Error("quantization_scheme.block_size", $"{block} is not supported ({string.Join(", ", BlockQuantizer.SupportedBlockSizes)})");
        if (floatLayers.Where(l => l < 0 || l >= config.NumLayers).Select(l => (int?)l).FirstOrDefault() is int bad)
            throw Error("quantization_scheme.float_layers", $"layer {bad} is not a layer of this model (0 to {config.NumLayers - 1})");
        var scheme = new QuantizationScheme(bits, (int)block) { FloatLayers = floatLayers, QuantizedHead = head };
        return scheme;
    }

    private LlamaConfig ReadConfig(JsonObject node)
    {
        try
        {
            return LlamaConfig.Parse(node.ToJsonString(), where);
        }
        catch (ModelFormatException e)
        {
            throw Error(e.Item is null ? "config" : "config." + e.Item, e.Problem, e);
        }
    }

    private PackageSource ReadSource(JsonObject o)
    {
        var filesNode = o["files"] as JsonArray ?? throw Error("source.files", "missing or not an array");
        var files = filesNode.Select((n, i) => n is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? v.GetValue<string>()
            : throw Error($"source.files[{i}]", "expected a string")).ToList();
        return new PackageSource(Str(o, "kind", "source.kind"), Str(o, "name", "source.name"), Str(o, "dtype", "source.dtype"), files);
    }

    private PackageFile FileEntry(JsonObject o, string path)
    {
        string file = Str(o, "file", path + ".file");
        if (file.Length == 0 || Path.IsPathRooted(file) || file.Contains('\\') || file.Split('/').Any(p => p is "" or "." or ".."))
            throw Error(path + ".file", $"'{file}' must be a relative path inside the package");
        long bytes = Long(o, "bytes", path + ".bytes");
        string sha = Str(o, "sha256", path + ".sha256");
        if (sha.Length != 64 || !sha.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
            throw Error(path + ".sha256", $"'{sha}' is not 64 lower-case hex digits");
        long parameters = o["parameters"] is null ? 0 : Long(o, "parameters", path + ".parameters");
        return new PackageFile(file, bytes, sha, parameters);
    }

    private JsonObject Obj(JsonObject o, string key, string path) =>
        o[key] as JsonObject ?? throw Error(path, o[key] is null ? "required field is missing" : "expected an object");

    private string Str(JsonObject o, string key, string path)
    {
        var node = o[key] ?? throw Error(path, "required field is missing");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw Error(path, $"expected a string, got {node.ToJsonString()}");
    }

    private long Long(JsonObject o, string key, string path)
    {
        var node = o[key] ?? throw Error(path, "required field is missing");
        if (node is JsonValue v && v.TryGetValue(out long x) && x >= 0) return x;
        throw Error(path, $"expected a non-negative integer, got {node.ToJsonString()}");
    }

    private ModelFormatException Error(string field, string problem, Exception? inner = null) => new(where, field, problem, inner);
}
