using System.Text.Json;
using System.Text.Json.Nodes;

namespace Strata.Models.Config;

/// <summary>Typed reads of config.json fields whose errors name the file and field.</summary>
internal sealed class JsonFields(JsonObject root, string where)
{
    public string Architecture()
    {
        if (root["architectures"] is not JsonArray arr || arr.Count == 0)
            throw new ModelFormatException(where, "architectures", "missing or empty; expected e.g. [\"LlamaForCausalLM\"]");
        string? arch = Str(arr[0], "architectures");
        if (arch is null || !LlamaConfig.SupportedArchitectures.Contains(arch))
            throw new ModelFormatException(where, "architectures",
                $"'{arch}' is not supported; supported: {string.Join(", ", LlamaConfig.SupportedArchitectures)}");
        return arch;
    }

    public int PositiveInt(string field) =>
        OptionalPositiveInt(field) ?? throw new ModelFormatException(where, field, "required field is missing");

    public int? OptionalPositiveInt(string field)
    {
        int? v = OptionalInt(field);
        if (v is <= 0) throw new ModelFormatException(where, field, $"must be positive, got {v}");
        return v;
    }

    public int? OptionalInt(string field)
    {
        var node = root[field];
        if (node is null) return null;
        if (node is JsonValue val && val.TryGetValue<long>(out long l) && l is >= int.MinValue and <= int.MaxValue) return (int)l;
        if (node is JsonValue dv && dv.TryGetValue<double>(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw new ModelFormatException(where, field, $"expected an integer, got {node.ToJsonString()}");
    }

    public double? OptionalDouble(string field)
    {
        var node = root[field];
        if (node is null) return null;
        if (node is JsonValue val && val.TryGetValue<double>(out double d) && double.IsFinite(d)) return d;
        throw new ModelFormatException(where, field, $"expected a number, got {node.ToJsonString()}");
    }

    public bool? OptionalBool(string field)
    {
        var node = root[field];
        if (node is null) return null;
        if (node is JsonValue val && val.TryGetValue<bool>(out bool b)) return b;
        throw new ModelFormatException(where, field, $"expected true or false, got {node.ToJsonString()}");
    }

    public string? OptionalString(string field) => root[field] is null ? null : Str(root[field], field);

    public IReadOnlyList<int> IntOrList(string field)
    {
        var node = root[field];
        if (node is null) return [];
        if (node is JsonArray arr)
            return arr.Select((n, i) => n is JsonValue v && v.TryGetValue<int>(out int x)
                ? x
                : throw new ModelFormatException(where, $"{field}[{i}]", "expected an integer")).ToArray();
        return [OptionalInt(field)!.Value];
    }

    public RopeScaling? RopeScaling()
    {
        var node = root["rope_scaling"];
        if (node is null) return null;
        if (node is not JsonObject o)
            throw new ModelFormatException(where, "rope_scaling", "expected an object or null");
        string type = Str(o["rope_type"] ?? o["type"], "rope_scaling.rope_type") ?? "default";
        if (type == "default") return null;
        if (type != "llama3")
            throw new ModelFormatException(where, "rope_scaling.rope_type", $"'{type}' is not supported (only llama3 or default)");
        var sub = new JsonFields(o, where);
        double factor = sub.OptionalDouble("factor") ?? throw new ModelFormatException(where, "rope_scaling.factor", "required field is missing");
        double low = sub.OptionalDouble("low_freq_factor") ?? throw new ModelFormatException(where, "rope_scaling.low_freq_factor", "required field is missing");
        double high = sub.OptionalDouble("high_freq_factor") ?? throw new ModelFormatException(where, "rope_scaling.high_freq_factor", "required field is missing");
        int orig = sub.OptionalPositiveInt("original_max_position_embeddings") ?? throw new ModelFormatException(where, "rope_scaling.original_max_position_embeddings", "required field is missing");
        if (high <= low)
            throw new ModelFormatException(where, "rope_scaling.high_freq_factor", $"must exceed low_freq_factor ({high} <= {low})");
        return new RopeScaling(factor, low, high, orig);
    }

    private string? Str(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
        {
            try
            {
                return v.GetValue<string>();
            }
            catch (InvalidOperationException e)
            {
                throw new ModelFormatException(where, field, $"is not valid Unicode text: {e.Message}", e);
            }
        }
        throw new ModelFormatException(where, field, $"expected a string, got {node.ToJsonString()}");
    }
}
