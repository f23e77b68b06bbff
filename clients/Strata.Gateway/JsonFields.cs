using System.Text.Json;

namespace Strata.Gateway;

/// <summary>Reads optional fields of a JSON request body (null when absent or null), with a 400 naming the field
/// when one has the wrong type or is not valid text. Shared by the OpenAI routes and the admin routes.</summary>
internal static class JsonFields
{
    public static string? String(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.String ? Text(v, param ?? name) : throw OpenAiException.Invalid(param ?? name, $"{param ?? name} must be a string");
    }

    // System.Text.Json decodes strings lazily: invalid UTF-8 or a lone surrogate escape ("\ud800") fails only here.
    public static string Text(JsonElement v, string param)
    {
        try
        {
            return v.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw OpenAiException.Invalid(param, $"{param} is not valid Unicode text (invalid UTF-8 or an unpaired surrogate escape)");
        }
    }

    public static bool? Bool(JsonElement o, string name, string? param = null)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw OpenAiException.Invalid(param ?? name, $"{param ?? name} must be true or false");
    }

    public static double? Number(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) ? d : throw OpenAiException.Invalid(name, $"{name} must be a number");
    }

    public static long? Long(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw OpenAiException.Invalid(name, $"{name} must be an integer in the 64-bit range");
    }

    public static int? Int(JsonElement o, string name)
    {
        if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw OpenAiException.Invalid(name, $"{name} must be an integer in the 32-bit range");
    }
}
