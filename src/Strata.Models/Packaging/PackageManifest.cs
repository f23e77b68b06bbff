using System.Text.Json;
using System.Text.Json.Nodes;
using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>
/// The contents of <c>strata-model.json</c>: what a model package holds and the checksum of every file.
/// It carries no timestamp, so importing the same checkpoint twice gives byte-identical packages.
/// </summary>
public sealed record PackageManifest
{
    /// <summary>File name of the manifest inside a package folder.</summary>
    public const string FileName = "strata-model.json";
    /// <summary>The manifest format this code writes and reads.</summary>
    public const int CurrentFormatVersion = 1;
    /// <summary>Relative path of the embedding file.</summary>
    public const string EmbeddingFile = "embed.safetensors";
    /// <summary>Relative path of the final norm / LM head file.</summary>
    public const string HeadFile = "head.safetensors";

    /// <summary>Manifest format version.</summary>
    public int FormatVersion { get; init; } = CurrentFormatVersion;
    /// <summary>The model's name.</summary>
    public required string Name { get; init; }
    /// <summary>The full model shape.</summary>
    public required LlamaConfig Config { get; init; }
    /// <summary>Element type of every weight file.</summary>
    public required TensorDType DType { get; init; }
    /// <summary>Weight quantization: <c>none</c>, <c>int8</c> or <c>int4</c>.</summary>
    public string Quantization => Quant?.Name ?? "none";
    /// <summary>How the weights are quantized; null when they are all float (the manifest then has no
    /// <c>quantization_scheme</c>, exactly as before quantization existed).</summary>
    public QuantizationScheme? Quant { get; init; }
    /// <summary>Where the weights came from.</summary>
    public required PackageSource Source { get; init; }
    /// <summary><c>embed.safetensors</c>: model.embed_tokens.weight.</summary>
    public required PackageFile Embedding { get; init; }
    /// <summary>One file per decoder layer, in order.</summary>
    public required IReadOnlyList<PackageLayer> Layers { get; init; }
    /// <summary><c>head.safetensors</c>: model.norm.weight, and lm_head.weight when the head is not tied.</summary>
    public required PackageFile Head { get; init; }
    /// <summary>Tokenizer and config files copied from the source.</summary>
    public required IReadOnlyList<PackageFile> Files { get; init; }

    /// <summary>The model's architecture (from <see cref="Config"/>).</summary>
    public string Architecture => Config.Architecture;

    /// <summary>Weight elements of the whole model.</summary>
    public long ParameterCount => Embedding.Parameters + Head.Parameters + Layers.Sum(l => l.Entry.Parameters);

    /// <summary>Every weight file: embedding, layers, head.</summary>
    public IEnumerable<PackageFile> WeightFiles => Layers.Select(l => l.Entry).Prepend(Embedding).Append(Head);

    /// <summary>The relative path of layer <paramref name="index"/>'s file.</summary>
    public static string LayerFile(int index) => $"layers/layer-{index:D5}.safetensors";

    /// <summary>The <c>torch_dtype</c> spelling of a dtype: float32, float16, bfloat16.</summary>
    public static string TorchDtypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.F16 => "float16",
        TensorDType.BF16 => "bfloat16",
        _ => "float32",
    };

    /// <summary>The manifest as JSON (fields in a fixed order).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["format"] = "strata-model",
            ["format_version"] = FormatVersion,
            ["name"] = Name,
            ["architecture"] = Architecture,
            ["dtype"] = DType.UserName(),
            ["quantization"] = Quantization,
        };
        if (Quant is not null)
        {
            o["quantization_scheme"] = new JsonObject
            {
                ["bits"] = Quant.Bits,
                ["block_size"] = Quant.BlockSize,
                ["zero_points"] = true,
                ["float_layers"] = new JsonArray(Quant.FloatLayers.Select(l => (JsonNode)l).ToArray()),
                ["quantized_head"] = Quant.QuantizedHead,
                ["layout"] = "MatMulNBits",
            };
        }
        foreach (var (k, v) in Body()) o[k] = v?.DeepClone();
        return o;
    }

    private JsonObject Body() => new()
    {
        ["parameter_count"] = ParameterCount,
        ["source"] = new JsonObject
        {
            ["kind"] = Source.Kind,
            ["name"] = Source.Name,
            ["dtype"] = Source.DType,
            ["files"] = new JsonArray(Source.Files.Select(f => (JsonNode)f).ToArray()),
        },
        ["config"] = Config.ToJson(),
        ["embedding"] = FileJson(Embedding),
        ["layers"] = new JsonArray(Layers.Select(l =>
        {
            var o = new JsonObject { ["index"] = l.Index };
            foreach (var (k, v) in FileJson(l.Entry)) o[k] = v?.DeepClone();
            return (JsonNode)o;
        }).ToArray()),
        ["head"] = FileJson(Head),
        ["files"] = new JsonArray(Files.Select(f => (JsonNode)FileJson(f)).ToArray()),
    };

    /// <summary>The manifest as the indented UTF-8 text written to <see cref="FileName"/>.</summary>
    public string ToJsonText() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>Parses and validates a manifest; <paramref name="where"/> names the file in errors.</summary>
    public static PackageManifest Parse(string json, string where)
    {
        JsonObject root;
        try
        {
            // Duplicate names are refused while parsing; JsonObject would otherwise throw ArgumentException on first use.
            root = JsonNode.Parse(json, null, new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                   ?? throw new ModelFormatException(where, null, "expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(where, null, $"invalid JSON: {e.Message}", e);
        }
        catch (InvalidOperationException e)
        {
            throw new ModelFormatException(where, null, $"holds a name that is not valid Unicode: {e.Message}", e);
        }
        try
        {
            return new ManifestReader(where).Read(root);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json decodes strings lazily: a lone surrogate escape fails when the value is first read.
            throw new ModelFormatException(where, null, $"holds a string that is not valid Unicode: {e.Message}", e);
        }
    }

    private static JsonObject FileJson(PackageFile f) => new()
    {
        ["file"] = f.File,
        ["bytes"] = f.Bytes,
        ["sha256"] = f.Sha256,
        ["parameters"] = f.Parameters,
    };
}
