using System.Text;
using Microsoft.AspNetCore.Http;
using Strata.Contracts;

namespace Strata.Gateway;

/// <summary>Turns a session's chunks into an OpenAI response: one JSON body, or server-sent events as the official
/// clients parse them (a role delta first for chat, text deltas, a final chunk with the finish reason, the usage
/// chunk with <c>choices: []</c> when asked, then <c>data: [DONE]</c>).</summary>
internal sealed class TurnWriter(HttpContext http, OpenAiRequest request, TokenQuota quota, Func<Exception, OpenAiException> map)
{
    private readonly string _id = (request.Chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
    private readonly long _created = OpenAiResponses.Now();
    private string Object => request.Chat ? "chat.completion" : "text_completion";

    public async Task Run(IAsyncEnumerable<GenerateChunk> chunks, CancellationToken ct)
    {
        await using var stream = chunks.GetAsyncEnumerator(ct);
        // The first chunk is awaited before anything is written, so that a request the cluster refuses is an HTTP
        // error with its status, not a stream that fails.
        bool any = await stream.MoveNextAsync();
        if (request.Stream) await Stream(stream, any, ct);
        else await Whole(stream, any, ct);
    }

    private async Task Whole(IAsyncEnumerator<GenerateChunk> stream, bool any, CancellationToken ct)
    {
        var text = new StringBuilder();
        string finish = "stop";
        int prompt = 0, completion = 0;
        for (; any; any = await stream.MoveNextAsync())
        {
            var c = stream.Current;
            text.Append(c.Text);
            completion += c.TokenIds.Length;
            if (c.Usage is { } u) (prompt, completion) = (u.PromptTokens, u.CompletionTokens);
            if (c.FinishReason is { } f) finish = f;
        }
        quota.Charge(prompt + completion);
        object choice = request.Chat
            ? new { index = 0, message = new { role = "assistant", content = text.ToString(), refusal = (string?)null }, logprobs = (object?)null, finish_reason = finish }
            : new { text = text.ToString(), index = 0, logprobs = (object?)null, finish_reason = finish };
        await http.Response.WriteAsJsonAsync(new
        {
            id = _id, @object = Object, created = _created, model = request.Model, choices = new[] { choice },
            usage = OpenAiResponses.Usage(prompt, completion),
        }, ct);
    }

    private async Task Stream(IAsyncEnumerator<GenerateChunk> stream, bool any, CancellationToken ct)
    {
        var response = http.Response;
        OpenAiResponses.StartEvents(response);
        int prompt = 0, completion = 0;
        string? finish = null;
        try
        {
            if (request.Chat) await WriteDelta("", "assistant", null, ct);
            for (; any; any = await stream.MoveNextAsync())
            {
                var c = stream.Current;
                completion += c.TokenIds.Length;
                quota.Charge(c.TokenIds.Length);
                if (c.Usage is { } u) (prompt, completion) = (u.PromptTokens, u.CompletionTokens);
                finish = c.FinishReason ?? finish;
                if (c.Text.Length > 0) await WriteDelta(c.Text, null, null, ct);
            }
            quota.Charge(prompt);
            await WriteDelta(null, null, finish ?? "stop", ct);
            if (request.IncludeUsage)
                await OpenAiResponses.WriteEvent(response, new
                {
                    id = _id, @object = ChunkObject, created = _created, model = request.Model, choices = Array.Empty<object>(),
                    usage = OpenAiResponses.Usage(prompt, completion),
                }, ct);
            await OpenAiResponses.WriteDone(response, ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // The status line is sent: the failure is the stream's last event, never a cut connection.
            await OpenAiResponses.WriteEvent(response, OpenAiResponses.ErrorBody(map(e)), CancellationToken.None);
        }
    }

    private string ChunkObject => request.Chat ? "chat.completion.chunk" : "text_completion";

    // A chat delta carries the role (first chunk only) and the text; the last chunk's delta is empty. A completion
    // chunk carries the text.
    private Task WriteDelta(string? text, string? role, string? finish, CancellationToken ct)
    {
        object choice = request.Chat
            ? new { index = 0, delta = Delta(text, role), logprobs = (object?)null, finish_reason = finish }
            : new { text = text ?? "", index = 0, logprobs = (object?)null, finish_reason = finish };
        return OpenAiResponses.WriteEvent(http.Response, new { id = _id, @object = ChunkObject, created = _created, model = request.Model, choices = new[] { choice } }, ct);
    }

    private static object Delta(string? text, string? role) => (text, role) switch
    {
        (null, _) => new { },
        (_, null) => new { content = text },
        _ => new { role, content = text },
    };
}
