using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Gateway;

/// <summary>
/// Serves completions and chat completions from session grains. A request without <c>X-Strata-Session</c> is one
/// turn of a new session that is closed (KV freed at every stage, state deleted) when the response ends; with the
/// header, the turn continues that session, whose KV stays parked for the next turn. A session belongs to the key
/// that created it. Errors before the first token are HTTP errors in OpenAI's shape; a failure after the stream
/// began is a final <c>data: {"error": ...}</c> event. A client that disconnects cancels the turn.
/// </summary>
internal sealed partial class CompletionHandler(StrataClient client, GatewayOptions options, ILogger<CompletionHandler> logger)
{
    /// <summary>The header that names a session to continue.</summary>
    public const string SessionHeader = "X-Strata-Session";

    public async Task Complete(HttpContext http, bool chat)
    {
        var caller = http.Features.GetRequiredFeature<GatewayCaller>();
        var ct = http.RequestAborted;
        string? session = null;
        bool ephemeral = true;
        OpenAiRequest? request = null;
        try
        {
            using var body = await ReadBody(http);
            request = OpenAiRequest.Read(body.RootElement, chat, options);
            if (!caller.Quota.TryAdmit(out var wait))
                throw new OpenAiException(429, "rate_limit_error", $"API key '{caller.Key.Name}' has used its {caller.Key.TokensPerMinute} tokens this minute",
                    code: "rate_limit_exceeded", retryAfter: wait);
            (session, ephemeral) = SessionOf(http);
            Orleans.Runtime.RequestContext.Set(CallerContext.Key, caller.Key.Name);
            var asked = request;
            var turn = new TurnWriter(http, request, caller.Quota, e => Map(e, asked));
            await turn.Run(client.GenerateAsync(session, request.ToGenerate(), ct), ct);
        }
        catch (Exception e) when (!http.Response.HasStarted && !ct.IsCancellationRequested)
        {
            await OpenAiResponses.WriteError(http, Map(e, request), CancellationToken.None);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away: the turn was cancelled and its KV freed.
        }
        finally
        {
            if (ephemeral && session is not null) await Close(session);
        }
    }

    public async Task<IResult> Models()
    {
        var names = await client.Orleans.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.Key).List();
        // One status call per model, all at once: the answer takes one round trip, not one per model.
        var statuses = await Task.WhenAll(names.Select(client.GetModelStatusAsync));
        var data = names.Zip(statuses).Where(m => m.Second.State != DeploymentState.NotDeployed)
            .Select(m => new { id = m.First, @object = "model", created = 0, owned_by = "strata" }).ToList();
        return Results.Json(new { @object = "list", data });
    }

    public async Task Ready(HttpContext http)
    {
        try
        {
            var names = await client.Orleans.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.Key).List();
            var statuses = await Task.WhenAll(names.Select(name => client.Orleans.GetGrain<IModelGrain>(name).GetStatus()));
            var ready = names.Zip(statuses).Where(m => m.Second.State == DeploymentState.Ready).Select(m => m.First).ToList();
            http.Response.StatusCode = ready.Count > 0 ? 200 : 503;
            await http.Response.WriteAsJsonAsync(new { status = ready.Count > 0 ? "ready" : "no model is ready", models = ready });
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            http.Response.StatusCode = 503;
            await http.Response.WriteAsJsonAsync(new { status = "the cluster does not answer", models = Array.Empty<string>() });
        }
    }

    public async Task GetSession(HttpContext http, string id)
    {
        try
        {
            var info = await Session(http, id).GetInfo();
            if (info.Model is null && info.HistoryTokens == 0) throw new StrataException(ErrorCodes.NotFound, $"no session '{id}'");
            await http.Response.WriteAsJsonAsync(new
            {
                id, @object = "session", model = info.Model, history_tokens = info.HistoryTokens, cached_tokens = info.CachedTokens,
                holds_kv = info.HoldsKv, generating = info.GeneratingTurn is not null,
            });
        }
        catch (Exception e)
        {
            await OpenAiResponses.WriteError(http, Map(e), CancellationToken.None);
        }
    }

    public async Task DeleteSession(HttpContext http, string id)
    {
        try
        {
            var session = Session(http, id);
            var info = await session.GetInfo();
            if (info.Model is null && info.HistoryTokens == 0) throw new StrataException(ErrorCodes.NotFound, $"no session '{id}'");
            await session.Close();
            await http.Response.WriteAsJsonAsync(new { id, @object = "session.deleted", deleted = true });
        }
        catch (Exception e)
        {
            await OpenAiResponses.WriteError(http, Map(e), CancellationToken.None);
        }
    }

    private ISessionGrain Session(HttpContext http, string id)
    {
        CheckSessionId(id);
        Orleans.Runtime.RequestContext.Set(CallerContext.Key, http.Features.GetRequiredFeature<GatewayCaller>().Key.Name);
        return client.Orleans.GetGrain<ISessionGrain>(id);
    }

    private static (string Id, bool Ephemeral) SessionOf(HttpContext http)
    {
        string? named = http.Request.Headers[SessionHeader];
        if (string.IsNullOrEmpty(named)) return ("gw-" + Guid.NewGuid().ToString("N"), true);
        CheckSessionId(named);
        return (named, false);
    }

    private static void CheckSessionId(string id)
    {
        if (id.Length is 0 or > 128 || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new OpenAiException(400, "invalid_request_error", "a session id is 1 to 128 letters, digits, '-', '_' or '.'", SessionHeader);
    }

    private async Task Close(string session)
    {
        try
        {
            await client.Orleans.GetGrain<ISessionGrain>(session).Close();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or StrataException)
        {
            // Its KV expires at the stages after the session TTL.
            LogCloseFailed(logger, session, e.Message);
        }
    }

    internal async Task<JsonDocument> ReadBody(HttpContext http)
    {
        if (http.Request.ContentType is { } type && !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            throw new OpenAiException(415, "invalid_request_error", $"the body must be application/json, got '{type}'");
        try
        {
            return await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 32 }, http.RequestAborted);
        }
        catch (JsonException e)
        {
            throw new OpenAiException(400, "invalid_request_error", $"the body is not valid JSON: {e.Message}");
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new OpenAiException(413, "invalid_request_error", $"the body is larger than {options.MaxBodyBytes} bytes", code: "request_too_large");
        }
    }

    /// <summary>What a failure means to an OpenAI client. <paramref name="request"/> is the completion request it
    /// failed, once read: a prompt the model's tokenizer cannot encode is then a 400 naming <c>prompt</c> or
    /// <c>messages</c>. Messages from the cluster pass through <see cref="ClusterErrors.Scrub"/>, and a model file
    /// a silo cannot read is a typed error that names no path.</summary>
    internal OpenAiException Map(Exception e, OpenAiRequest? request = null)
    {
        string input = request?.Chat == true ? "messages" : "prompt";
        switch (e)
        {
            case OpenAiException o: return o;
            case StrataException s:
                string message = ClusterErrors.Scrub(s.Message);
                return s.Code switch
                {
                    ErrorCodes.InvalidRequest => new(400, "invalid_request_error", message),
                    ErrorCodes.InvalidPrompt => new(400, "invalid_request_error", message, input, "invalid_prompt"),
                    ErrorCodes.ContextOverflow => new(400, "invalid_request_error", message, input, "context_length_exceeded"),
                    ErrorCodes.ModelNotFound => new(404, "invalid_request_error", message, "model", "model_not_found"),
                    ErrorCodes.NotFound => new(404, "invalid_request_error", message, SessionHeader, "session_not_found"),
                    ErrorCodes.Forbidden => new(403, "permission_error", message, code: "forbidden"),
                    ErrorCodes.Overloaded => new(429, "rate_limit_error", message, code: "server_overloaded", retryAfter: TimeSpan.FromSeconds(1)),
                    ErrorCodes.ModelNotReady => new(503, "server_error", message, code: "model_not_ready", retryAfter: TimeSpan.FromSeconds(5)),
                    _ => new(503, "server_error", message, code: s.Code, retryAfter: TimeSpan.FromSeconds(2)),
                };
            case var _ when request is not null && ClusterErrors.Is(e, ClusterErrors.ModelFormat):
                // The session's tokenizer threw while encoding this request's text (its failures to load arrive as
                // StrataExceptions): this model cannot serve this text. The exception has no Orleans codec, so what
                // the tokenizer said stays in the silo's log.
                LogEncodeFailed(logger, request.Model, e.Message);
                string why = ClusterErrors.LostMessage(e) ? "the silo's log has the reason" : ClusterErrors.Scrub(e.Message);
                return OpenAiException.Invalid(input,
                    $"the tokenizer of model '{request.Model}' cannot encode the {input} ({why}); change the text or fix the model's tokenizer files",
                    "invalid_prompt");
            case var _ when ClusterErrors.IsUnreadableFile(e):
                LogUnreadableFile(logger, e.GetType().Name, e.Message);
                string model = request is null ? "a model" : $"model '{request.Model}'";
                return new(500, "server_error",
                    $"a file of {model} cannot be read on the silo (no permission, or it is missing); the cluster's operator must fix the model store",
                    code: "model_files_unreadable");
            case OrleansException or TimeoutException or ClusterUnreachableException:
                LogClusterError(logger, e.GetType().Name, e.Message.Split('\n', 2)[0]);
                return new(503, "server_error", "the cluster did not answer (a silo may have just been lost); retry in a few seconds",
                    code: "cluster_unavailable", retryAfter: TimeSpan.FromSeconds(2));
            default:
                LogInternalError(logger, e);
                return new(500, "server_error", "internal error in the gateway; it has been logged");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "closing session {Session} failed: {Error}")]
    private static partial void LogCloseFailed(ILogger logger, string session, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster call failed ({Type}): {Error}")]
    private static partial void LogClusterError(ILogger logger, string type, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "model {Model} cannot encode a request's text: {Error}")]
    private static partial void LogEncodeFailed(ILogger logger, string model, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "a model file cannot be read on a silo ({Type}): {Error}")]
    private static partial void LogUnreadableFile(ILogger logger, string type, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "request failed")]
    private static partial void LogInternalError(ILogger logger, Exception e);
}
