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

    // Each chunk of the session is sent as soon as it is written (one flush per chunk, the role delta going out with
    // the first text); the end (finish chunk, usage, [DONE]) is one flush.
    private async Task Stream(IAsyncEnumerator<GenerateChunk> stream, bool any, CancellationToken ct)
    {
        var response = http.Response;
        OpenAiResponses.StartEvents(response);
        var events = new ChunkEncoder(response.BodyWriter, _id, ChunkObject, _created, request.Model, request.Chat);
        int prompt = 0, completion = 0;
        string? finish = null;
        try
        {
            if (request.Chat) events.Delta("", "assistant", null);
            for (; any; any = await stream.MoveNextAsync())
            {
                var c = stream.Current;
                completion += c.TokenIds.Length;
                quota.Charge(c.TokenIds.Length);
                if (c.Usage is { } u) (prompt, completion) = (u.PromptTokens, u.CompletionTokens);
                finish = c.FinishReason ?? finish;
                if (c.Text.Length == 0) continue;
                events.Delta(c.Text, null, null);
                await events.Flush(ct);
            }
            quota.Charge(prompt);
            events.Delta(null, null, finish ?? "stop");
            if (request.IncludeUsage) events.Usage(prompt, completion);
            events.Done();
            await events.Flush(ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            // The status line is sent: the failure is the stream's last event, never a cut connection.
            await OpenAiResponses.WriteEvent(response, OpenAiResponses.ErrorBody(map(e)), CancellationToken.None);
        }
    }

    private string ChunkObject => request.Chat ? "chat.completion.chunk" : "text_completion";
}
