using System.Text.Json;

namespace Strata.Models.Chat;

/// <summary>
/// A model's chat template: the Jinja program in its <c>tokenizer_config.json</c> that turns chat messages into the
/// prompt text the model was trained on. This is a small interpreter for the Jinja subset real templates use
/// (Llama 2/3/3.1, Mistral, Qwen2/2.5, ChatML/SmolLM and the like), rendering as transformers'
/// <c>apply_chat_template(..., tokenize=False)</c> does: <c>trim_blocks</c> and <c>lstrip_blocks</c> on, lenient
/// undefined values, <c>tools</c> and <c>documents</c> defined as none unless given. A parsed template is immutable
/// and can be rendered from many threads at once.
/// </summary>
public sealed class ChatTemplate
{
    private readonly IReadOnlyList<Stmt> _body;
    private readonly string? _origin;

    private ChatTemplate(string source, IReadOnlyList<Stmt> body, string? origin, string? bosToken, string? eosToken)
    {
        Source = source;
        _body = body;
        _origin = origin;
        BosToken = bosToken;
        EosToken = eosToken;
    }

    /// <summary>The template text.</summary>
    public string Source { get; }

    /// <summary>The <c>bos_token</c> read from the model's configuration, used unless the render options give one.</summary>
    public string? BosToken { get; }

    /// <summary>The <c>eos_token</c> read from the model's configuration, used unless the render options give one.</summary>
    public string? EosToken { get; }

    /// <summary>Parses a template.</summary>
    /// <exception cref="ChatTemplateException">The template does not parse; the message gives the line and column.</exception>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, TemplateParser.Parse(source, null), null, null, null);
    }

    /// <summary>
    /// Loads the chat template of a Hugging Face model folder: <c>chat_template.jinja</c> when present (newer
    /// transformers save it there), else <c>tokenizer_config.json</c>'s <c>chat_template</c>, which is either a
    /// string or a list of <c>{name, template}</c> from which <paramref name="name"/> is taken. <c>bos_token</c> and
    /// <c>eos_token</c> (strings or <c>{content: ...}</c> objects) come from <c>tokenizer_config.json</c>.
    /// </summary>
    /// <param name="modelDir">The model folder.</param>
    /// <param name="name">Which named template to take from a list; transformers' default is <c>default</c>.</param>
    /// <exception cref="ChatTemplateException">
    /// The model has no chat template, the configuration is malformed (<see cref="ChatTemplateErrorKind.Configuration"/>),
    /// or the template does not parse (<see cref="ChatTemplateErrorKind.Syntax"/>); the message names the file.
    /// </exception>
    public static ChatTemplate FromTokenizerConfig(string modelDir, string name = "default")
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        string configFile = Path.Combine(modelDir, "tokenizer_config.json");
        string jinjaFile = Path.Combine(modelDir, "chat_template.jinja");
        bool hasConfig = File.Exists(configFile);
        if (!hasConfig && !File.Exists(jinjaFile))
            throw ConfigError(configFile, "file not found, so the model has no chat template");
        var config = hasConfig ? TokenizerConfigTemplate.Read(configFile, name) : default;
        if (File.Exists(jinjaFile))
            config = config with { Template = File.ReadAllText(jinjaFile), Origin = jinjaFile };
        if (config.Template is null)
            throw ConfigError(configFile, "the model has no chat template (no 'chat_template' field, and no chat_template.jinja beside it)");
        return new ChatTemplate(config.Template, TemplateParser.Parse(config.Template, config.Origin), config.Origin,
            config.BosToken, config.EosToken);
    }

    internal static ChatTemplateException ConfigError(string file, string problem, Exception? inner = null) =>
        new(ChatTemplateErrorKind.Configuration, problem, file, inner: inner);

    /// <summary>Renders the prompt for <paramref name="messages"/>.</summary>
    /// <exception cref="ChatTemplateException">
    /// The template rejected the conversation (<see cref="ChatTemplateErrorKind.Rejected"/>, its own message in
    /// <see cref="ChatTemplateException.Problem"/>), failed, or ran past a bound; the message gives the line and column.
    /// </exception>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        options ??= new ChatTemplateOptions();
        var globals = new TemplateScope(null);
        foreach (string function in TemplateFunctions.Globals) globals.Set(function, new BuiltinFunction(function));
        globals.Set("messages", messages.Select(m =>
            (object?)TemplateValues.MessageDict(m ?? throw new ArgumentException("a message is null", nameof(messages)))).ToList());
        globals.Set("add_generation_prompt", options.AddGenerationPrompt);
        // transformers always passes these, as None when the request has none.
        globals.Set("tools", null);
        globals.Set("documents", null);
        if ((options.BosToken ?? BosToken) is { } bos) globals.Set("bos_token", bos);
        if ((options.EosToken ?? EosToken) is { } eos) globals.Set("eos_token", eos);
        foreach (var (key, value) in options.Variables)
        {
            try
            {
                globals.Set(key, TemplateValues.FromClr(value));
            }
            catch (TemplateRuntimeError e)
            {
                throw new ChatTemplateException(e.Kind, $"variable '{key}': {e.Message}", _origin);
            }
        }
        try
        {
            return new TemplateEvaluator(_origin, options.MaxOutputLength, options.TimeProvider).Render(_body, globals);
        }
        catch (Exception e) when (e is not (ChatTemplateException or OutOfMemoryException))
        {
            // A safety net: whatever a template does, callers see one exception type.
            throw new ChatTemplateException(ChatTemplateErrorKind.Render, $"internal error: {e.Message}", _origin, inner: e);
        }
    }
}

/// <summary>The chat-template fields of a <c>tokenizer_config.json</c>.</summary>
internal readonly record struct TokenizerConfigTemplate(string? Template, string Origin, string? BosToken, string? EosToken)
{
    public static TokenizerConfigTemplate Read(string file, string name)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw ChatTemplate.ConfigError(file, $"invalid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw ChatTemplate.ConfigError(file, "expected a JSON object");
            var (template, origin) = root.TryGetProperty("chat_template", out var t) ? ReadTemplate(file, t, name) : (null, file);
            return new TokenizerConfigTemplate(template, origin, Token(file, root, "bos_token"), Token(file, root, "eos_token"));
        }
    }

    private static (string? Template, string Origin) ReadTemplate(string file, JsonElement value, string name)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Null: return (null, file);
            case JsonValueKind.String: return (value.GetString(), $"{file} (chat_template)");
            case JsonValueKind.Array:
                var names = new List<string>();
                foreach (var entry in value.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object
                        || !entry.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                        || !entry.TryGetProperty("template", out var body) || body.ValueKind != JsonValueKind.String)
                        throw ChatTemplate.ConfigError(file, "chat_template: each entry of the list needs a string 'name' and 'template'");
                    if (n.GetString() == name) return (body.GetString(), $"{file} (chat_template '{name}')");
                    names.Add(n.GetString()!);
                }
                throw ChatTemplate.ConfigError(file,
                    $"chat_template: no template named '{name}' (the file has: {string.Join(", ", names.Select(x => $"'{x}'"))})");
            default:
                throw ChatTemplate.ConfigError(file, "chat_template: expected a string or a list of {name, template}");
        }
    }

    /// <summary>A special token as a string or an AddedToken object <c>{"content": ...}</c>.</summary>
    private static string? Token(string file, JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw ChatTemplate.ConfigError(file, $"{field}: expected a string or an object with a string 'content'"),
        };
    }
}
