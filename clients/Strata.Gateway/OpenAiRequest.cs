using System.Globalization;
using System.Text.Json;
using Strata.Contracts;
using static Strata.Gateway.JsonFields;

namespace Strata.Gateway;

/// <summary>An error in the OpenAI shape, <c>{"error": {"message", "type", "param", "code"}}</c>, with its status.</summary>
public sealed class OpenAiException(int status, string type, string message, string? param = null, string? code = null,
    TimeSpan? retryAfter = null) : Exception(message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary><c>invalid_request_error</c>, <c>authentication_error</c>, <c>rate_limit_error</c>, ...</summary>
    public string Type { get; } = type;
    /// <summary>The request field at fault, if one is.</summary>
    public string? Param { get; } = param;
    /// <summary>A machine-readable code, if there is one.</summary>
    public string? Code { get; } = code;
    /// <summary>When to retry (sent as <c>Retry-After</c>), for 429 and 503.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;

    /// <summary>A 400 about <paramref name="param"/>.</summary>
    public static OpenAiException Invalid(string param, string message, string? code = null) =>
        new(400, "invalid_request_error", message, param, code);
}

/// <summary>A completion or chat completion request, read and bounds-checked.</summary>
internal sealed record OpenAiRequest(
    string Model,
    bool Chat,
    string? Prompt,
    int[]? PromptIds,
    ChatTurn[]? Messages,
    int MaxTokens,
    double Temperature,
    double TopP,
    long? Seed,
    string[] Stop,
    bool Stream,
    bool IncludeUsage,
    string? User)
{
    /// <summary>What the session is asked to do.</summary>
    public GenerateRequest ToGenerate() => new()
    {
        Model = Model,
        Prompt = Prompt ?? "",
        PromptIds = PromptIds,
        Messages = Messages,
        MaxNewTokens = MaxTokens,
        Sampling = new SamplingSpec(Temperature, 0, TopP),
        Seed = Seed is long s ? unchecked((ulong)s) : null,
        StopStrings = Stop,
    };

    /// <summary>Reads a request body. Unknown fields are ignored, as OpenAI's own server does; fields Strata cannot
    /// honour (<c>n</c> above 1, <c>tools</c>, <c>logprobs</c>, penalties) are refused by name.</summary>
    public static OpenAiRequest Read(JsonElement body, bool chat, GatewayOptions limits)
    {
        if (body.ValueKind != JsonValueKind.Object) throw OpenAiException.Invalid("", "the request body must be a JSON object");
        string model = String(body, "model") ?? throw OpenAiException.Invalid("model", "model is required");
        if (model.Length is 0 or > 256) throw OpenAiException.Invalid("model", "model must be 1 to 256 characters");

        string? prompt = null;
        int[]? promptIds = null;
        ChatTurn[]? messages = null;
        if (chat) messages = ReadMessages(body, limits);
        else (prompt, promptIds) = ReadPrompt(body, limits);

        int? maxTokens = Int(body, "max_completion_tokens") ?? Int(body, "max_tokens");
        string tokensParam = body.TryGetProperty("max_completion_tokens", out _) ? "max_completion_tokens" : "max_tokens";
        if (maxTokens is < 1 || maxTokens > limits.MaxTokens)
            throw OpenAiException.Invalid(tokensParam, $"{tokensParam} must be between 1 and {limits.MaxTokens}, got {maxTokens}");
        double temperature = Number(body, "temperature") ?? 1.0;
        if (temperature is < 0 or > 2) throw OpenAiException.Invalid("temperature", $"temperature must be between 0 and 2, got {Show(temperature)}");
        double topP = Number(body, "top_p") ?? 1.0;
        if (!(topP > 0 && topP <= 1)) throw OpenAiException.Invalid("top_p", $"top_p must be in (0, 1], got {Show(topP)}");
        long? seed = Long(body, "seed");
        int? n = Int(body, "n");
        if (n is not (null or 1)) throw OpenAiException.Invalid("n", $"n must be 1 (one choice per request), got {n}");
        foreach (string penalty in (string[])["presence_penalty", "frequency_penalty"])
            if (Number(body, penalty) is double p && p != 0) throw OpenAiException.Invalid(penalty, $"{penalty} is not supported (give 0 or leave it out)");
        foreach (string unsupported in (string[])["tools", "functions", "logit_bias", "response_format", "best_of", "suffix"])
            if (body.TryGetProperty(unsupported, out var v) && v.ValueKind is not JsonValueKind.Null)
                throw OpenAiException.Invalid(unsupported, $"{unsupported} is not supported by this server");
        if (body.TryGetProperty("logprobs", out var lp) && lp.ValueKind is not (JsonValueKind.Null or JsonValueKind.False) &&
            !(lp.ValueKind == JsonValueKind.Number && lp.GetDouble() == 0))
            throw OpenAiException.Invalid("logprobs", "logprobs are not supported by this server");

        string[] stop = ReadStop(body, limits);
        bool stream = Bool(body, "stream") ?? false;
        bool includeUsage = false;
        if (body.TryGetProperty("stream_options", out var so) && so.ValueKind == JsonValueKind.Object)
            includeUsage = Bool(so, "include_usage", "stream_options.include_usage") ?? false;
        string? user = String(body, "user");
        if (user is { Length: > 256 }) throw OpenAiException.Invalid("user", "user must be at most 256 characters");
        return new OpenAiRequest(model, chat, prompt, promptIds, messages, maxTokens ?? limits.DefaultMaxTokens, temperature, topP, seed, stop,
            stream, includeUsage, user);
    }

    private static (string?, int[]?) ReadPrompt(JsonElement body, GatewayOptions limits)
    {
        if (!body.TryGetProperty("prompt", out var p) || p.ValueKind == JsonValueKind.Null) throw OpenAiException.Invalid("prompt", "prompt is required");
        switch (p.ValueKind)
        {
            case JsonValueKind.String:
                string text = Text(p, "prompt");
                CheckLength("prompt", text.Length, limits);
                return (text, null);
            case JsonValueKind.Array when p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String:
                string one = Text(p[0], "prompt");
                CheckLength("prompt", one.Length, limits);
                return (one, null);
            case JsonValueKind.Array when p.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                if (p.GetArrayLength() == 0) throw OpenAiException.Invalid("prompt", "prompt must not be empty");
                CheckLength("prompt", p.GetArrayLength(), limits);
                var ids = new int[p.GetArrayLength()];
                int i = 0;
                foreach (var e in p.EnumerateArray())
                {
                    if (!e.TryGetInt32(out int id) || id < 0) throw OpenAiException.Invalid("prompt", $"prompt[{i}] is not a token id (a non-negative integer)");
                    ids[i++] = id;
                }
                return (null, ids);
            default:
                throw OpenAiException.Invalid("prompt", "prompt must be a string, a list of one string, or a list of token ids (batches of prompts are not supported)");
        }
    }

    private static ChatTurn[] ReadMessages(JsonElement body, GatewayOptions limits)
    {
        if (!body.TryGetProperty("messages", out var m) || m.ValueKind != JsonValueKind.Array || m.GetArrayLength() == 0)
            throw OpenAiException.Invalid("messages", "messages must be a non-empty list");
        if (m.GetArrayLength() > limits.MaxMessages)
            throw OpenAiException.Invalid("messages", $"at most {limits.MaxMessages} messages, got {m.GetArrayLength()}");
        var turns = new List<ChatTurn>();
        long chars = 0;
        int i = 0;
        foreach (var message in m.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (message.ValueKind != JsonValueKind.Object) throw OpenAiException.Invalid(at, $"{at} must be an object");
            string role = String(message, "role", $"{at}.role") ?? throw OpenAiException.Invalid($"{at}.role", $"{at}.role is required");
            if (role is not ("system" or "developer" or "user" or "assistant"))
                throw OpenAiException.Invalid($"{at}.role", $"{at}.role must be system, developer, user or assistant, got '{Clip(role)}'");
            string content = Content(message, at);
            chars += content.Length;
            CheckLength("messages", chars, limits);
            turns.Add(new ChatTurn(role == "developer" ? "system" : role, content));
        }
        return [.. turns];
    }

    // A string, or a list of parts of which only text parts are understood.
    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) return "";
        if (c.ValueKind == JsonValueKind.String) return Text(c, $"{at}.content");
        if (c.ValueKind != JsonValueKind.Array) throw OpenAiException.Invalid($"{at}.content", $"{at}.content must be a string or a list of text parts");
        var text = new System.Text.StringBuilder();
        int j = 0;
        foreach (var part in c.EnumerateArray())
        {
            string pat = $"{at}.content[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || String(part, "type", $"{pat}.type") != "text")
                throw OpenAiException.Invalid(pat, $"{pat}: only text parts are supported");
            text.Append(String(part, "text", $"{pat}.text") ?? "");
        }
        return text.ToString();
    }

    private static string[] ReadStop(JsonElement body, GatewayOptions limits)
    {
        if (!body.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null) return [];
        string[] stop = s.ValueKind switch
        {
            JsonValueKind.String => [Text(s, "stop")],
            JsonValueKind.Array when s.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) => s.EnumerateArray().Select(e => Text(e, "stop")).ToArray(),
            _ => throw OpenAiException.Invalid("stop", "stop must be a string or a list of strings"),
        };
        if (stop.Length > limits.MaxStopStrings) throw OpenAiException.Invalid("stop", $"at most {limits.MaxStopStrings} stop strings, got {stop.Length}");
        foreach (string one in stop)
            if (one.Length == 0 || one.Length > limits.MaxStopLength)
                throw OpenAiException.Invalid("stop", $"each stop string must be 1 to {limits.MaxStopLength} characters, got {one.Length}");
        return stop;
    }

    private static void CheckLength(string param, long chars, GatewayOptions limits)
    {
        if (chars > limits.MaxPromptChars)
            throw OpenAiException.Invalid(param, $"the prompt is longer than {limits.MaxPromptChars} characters", "context_length_exceeded");
    }

    private static string Show(double d) => d.ToString("G6", CultureInfo.InvariantCulture);

    private static string Clip(string s) => s.Length <= 32 ? s : s[..32] + "...";
}
