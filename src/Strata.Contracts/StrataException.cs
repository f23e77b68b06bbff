namespace Strata.Contracts;

/// <summary>
/// A typed, expected failure that crosses grain calls: the <see cref="Code"/> says what kind, the message says
/// what was wrong and what to do.
/// </summary>
[GenerateSerializer, Alias("strata.StrataException")]
public sealed class StrataException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StrataException(string code, string message) : base(message) => Code = code;

    /// <summary>One of <see cref="ErrorCodes"/>.</summary>
    [Id(0)]
    public string Code { get; private set; }
}

/// <summary>Values of <see cref="StrataException.Code"/>.</summary>
public static class ErrorCodes
{
    /// <summary>A request field is invalid; the message names it.</summary>
    public const string InvalidRequest = "invalid_request";
    /// <summary>The model's tokenizer cannot encode the request's text (the prompt or the rendered messages).</summary>
    public const string InvalidPrompt = "invalid_prompt";
    /// <summary>No model of that name is deployed.</summary>
    public const string ModelNotFound = "model_not_found";
    /// <summary>The model is deployed but not loaded yet, or a stage is not configured where the route says.</summary>
    public const string ModelNotReady = "model_not_ready";
    /// <summary>No KV capacity for another session right now.</summary>
    public const string Overloaded = "overloaded";
    /// <summary>The conversation does not fit the KV capacity.</summary>
    public const string ContextOverflow = "context_overflow";
    /// <summary>A stage failed or is unreachable.</summary>
    public const string StageFailed = "stage_failed";
    /// <summary>A stage no longer holds the KV the step expects (released, expired, evicted or of another turn); the
    /// session reserves again and rebuilds it from its history.</summary>
    public const string KvLost = "kv_lost";
    /// <summary>No such session (or it belongs to another caller).</summary>
    public const string NotFound = "not_found";
    /// <summary>The caller may not do this (cluster control without the admin certificate, a shard called by a client).</summary>
    public const string Forbidden = "forbidden";
}
