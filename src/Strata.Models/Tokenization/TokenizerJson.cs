using System.Text.Json;

namespace Strata.Models.Tokenization;

/// <summary>
/// Reads of tokenizer JSON files whose errors name the file and the field path
/// (e.g. <c>normalizer.normalizers[1].type</c>), so a bad checkpoint says exactly what to fix.
/// </summary>
internal readonly struct TokenizerJson(string file)
{
    public string File => file;

    /// <summary>Parses <paramref name="path"/>; invalid JSON becomes a <see cref="ModelFormatException"/> naming the file.</summary>
    public static JsonDocument Parse(string path)
    {
        try
        {
            using var stream = System.IO.File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                CommentHandling = JsonCommentHandling.Skip,
            });
        }
        catch (JsonException ex)
        {
            throw new ModelFormatException(path, null, $"invalid JSON: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            throw Unreadable(path, ex);
        }
    }

    /// <summary>A file that exists but cannot be opened or read (permissions, or not a regular file). The system's
    /// message repeats the path, which is cut to the file's name: this error reaches clients, and what scrubs it
    /// only knows the file's own path.</summary>
    public static ModelFormatException Unreadable(string path, Exception ex)
    {
        string said = ex.Message.Replace(Path.GetFullPath(path), Path.GetFileName(path), StringComparison.Ordinal)
            .Replace(path, Path.GetFileName(path), StringComparison.Ordinal);
        return new(path, null, ex is UnauthorizedAccessException
            ? $"cannot be read: {said} (make the model's files readable to the process that loads them)"
            : $"cannot be read: {said}", ex);
    }

    /// <summary>The property, or null when it is absent or JSON null.</summary>
    public static JsonElement? Prop(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? v
            : null;

    public ModelFormatException Error(string path, string problem) => new(file, path, problem);

    public JsonElement Object(JsonElement? value, string path) => value switch
    {
        null => throw Error(path, "required field is missing"),
        { ValueKind: JsonValueKind.Object } v => v,
        { } v => throw Error(path, $"expected an object, got {v.ValueKind}"),
    };

    public JsonElement Array(JsonElement? value, string path) => value switch
    {
        null => throw Error(path, "required field is missing"),
        { ValueKind: JsonValueKind.Array } v => v,
        { } v => throw Error(path, $"expected an array, got {v.ValueKind}"),
    };

    public string String(JsonElement? value, string path) =>
        OptString(value, path) ?? throw Error(path, "required field is missing");

    public string? OptString(JsonElement? value, string path) => value switch
    {
        null => null,
        { ValueKind: JsonValueKind.String } v => Text(v, path),
        { } v => throw Error(path, $"expected a string, got {v.ValueKind}"),
    };

    /// <summary>A string value; System.Text.Json decodes lazily, so bad UTF-8 or a lone surrogate escape fails only here.</summary>
    public string Text(JsonElement value, string path)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new ModelFormatException(file, path, $"is not valid Unicode text: {e.Message}", e);
        }
    }

    public bool Bool(JsonElement? value, string path, bool fallback) => value switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw Error(path, $"expected true or false, got {v.ValueKind}"),
    };

    public int Int(JsonElement? value, string path) =>
        OptInt(value, path) ?? throw Error(path, "required field is missing");

    public int? OptInt(JsonElement? value, string path) => value switch
    {
        null => null,
        { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out int i) => i,
        { } v => throw Error(path, $"expected an integer, got {Raw(v)}"),
    };

    /// <summary>The value's JSON text for an error message; text that is not valid UTF-8 is named by its kind instead.</summary>
    public static string Raw(JsonElement value)
    {
        try
        {
            return value.GetRawText();
        }
        catch (InvalidOperationException)
        {
            return $"a {value.ValueKind} that is not valid UTF-8";
        }
    }

    /// <summary>The <c>type</c> field of a component object (normalizer, pre-tokenizer, decoder, ...).</summary>
    public string TypeOf(JsonElement obj, string path) => String(Prop(Object(obj, path), "type"), path + ".type");

    /// <summary>An id that may be given as an integer or a list of integers (e.g. <c>eos_token_id</c>).</summary>
    public IReadOnlyList<int> IntOrList(JsonElement? value, string path)
    {
        if (value is not { } v) return [];
        if (v.ValueKind != JsonValueKind.Array) return [Int(v, path)];
        var ids = new List<int>();
        int i = 0;
        foreach (var item in v.EnumerateArray()) ids.Add(Int(item, $"{path}[{i++}]"));
        return ids;
    }

    /// <summary>A special-token name written as a string or as an AddedToken object with <c>content</c>.</summary>
    public string? TokenName(JsonElement? value, string path) => value switch
    {
        null => null,
        { ValueKind: JsonValueKind.Object } o => OptString(Prop(o, "content"), path + ".content"),
        { } v => OptString(v, path),
    };
}
