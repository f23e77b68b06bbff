namespace Strata.Models.Chat;

/// <summary>What a chat template is rendered with besides the messages.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>
    /// Appends the header that starts the assistant's reply (the template's <c>add_generation_prompt</c>), as a
    /// chat completion needs; leave it off to format a finished conversation.
    /// </summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary>The template's <c>bos_token</c>; null keeps the one read from <c>tokenizer_config.json</c>, if any.</summary>
    public string? BosToken { get; init; }

    /// <summary>The template's <c>eos_token</c>; null keeps the one read from <c>tokenizer_config.json</c>, if any.</summary>
    public string? EosToken { get; init; }

    /// <summary>
    /// Further template variables (for example <c>tools</c>, <c>date_string</c>). Values may be null, bool, numbers,
    /// strings, <see cref="System.Text.Json.JsonElement"/>, <see cref="ChatMessage"/>, string-keyed dictionaries and
    /// sequences of those. They override the built-in variables of the same name.
    /// </summary>
    public IReadOnlyDictionary<string, object?> Variables { get; init; } = new Dictionary<string, object?>();

    /// <summary>The clock behind <c>strftime_now</c> (local time, as transformers uses).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// The longest prompt, or string built on the way, that a render may produce, in UTF-16 chars; a template that
    /// grows past it fails with <see cref="ChatTemplateErrorKind.LimitExceeded"/> instead of exhausting memory.
    /// </summary>
    public int MaxOutputLength { get; init; } = 8 * 1024 * 1024;
}
