using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Strata.Gateway;

/// <summary>Writes OpenAI-shaped JSON bodies and server-sent events.</summary>
internal static class OpenAiResponses
{
    /// <summary>How every body is written: nulls kept (OpenAI's clients expect <c>"finish_reason": null</c>), text
    /// not escaped beyond what JSON needs.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    public static object ErrorBody(OpenAiException e) => new { error = new { message = e.Message, type = e.Type, param = e.Param, code = e.Code } };

    /// <summary>Writes <paramref name="e"/> as the response, with <c>Retry-After</c> (whole seconds, 1 to 60) when
    /// it has one.</summary>
    public static async Task WriteError(HttpContext http, OpenAiException e, CancellationToken cancellation)
    {
        if (http.Response.HasStarted) return;
        http.Response.StatusCode = e.Status;
        if (e.RetryAfter is TimeSpan after)
            http.Response.Headers.RetryAfter = Math.Clamp((int)Math.Ceiling(after.TotalSeconds), 1, 60).ToString(CultureInfo.InvariantCulture);
        await http.Response.WriteAsJsonAsync(ErrorBody(e), Json, cancellation);
    }

    /// <summary>Starts an event stream (no caching, no proxy buffering).</summary>
    public static void StartEvents(HttpResponse response)
    {
        response.StatusCode = 200;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
    }

    /// <summary>Writes one <c>data:</c> event and flushes it to the client.</summary>
    public static async Task WriteEvent(HttpResponse response, object data, CancellationToken cancellation)
    {
        await response.WriteAsync("data: " + JsonSerializer.Serialize(data, Json) + "\n\n", cancellation);
        await response.Body.FlushAsync(cancellation);
    }

    /// <summary>OpenAI's usage object.</summary>
    public static object Usage(int prompt, int completion) =>
        new { prompt_tokens = prompt, completion_tokens = completion, total_tokens = prompt + completion };

    /// <summary>Seconds since the Unix epoch, as <c>created</c>.</summary>
    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}
