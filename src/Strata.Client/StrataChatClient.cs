using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Strata.Contracts;

namespace Strata.Client;

/// <summary>
/// <see cref="IChatClient"/> over a Strata cluster, so that .NET applications written against
/// Microsoft.Extensions.AI use the cluster without HTTP. The model's chat template (rendered on the silo) turns the
/// messages into the prompt. Without <see cref="ChatOptions.ConversationId"/> each call is one turn of a new session
/// that is closed afterwards (KV freed at every stage); with it, the call continues that session and only the
/// messages after its last reply are sent (the session keeps the rest in its history and KV). Text only: tools,
/// images and response formats are refused.
/// </summary>
public sealed class StrataChatClient(StrataClient client, string model) : IChatClient
{
    /// <summary>Tokens generated when <see cref="ChatOptions.MaxOutputTokens"/> is not given.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in GetStreamingResponseAsync(messages, options, cancellationToken)) updates.Add(update);
        return updates.ToChatResponse();
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = ToRequest(messages.ToList(), options);
        string? conversation = options?.ConversationId;
        string session = conversation ?? "meai-" + Guid.NewGuid().ToString("N");
        string responseId = Guid.NewGuid().ToString("N");
        try
        {
            await foreach (var chunk in client.GenerateAsync(session, request, cancellationToken))
            {
                var update = new ChatResponseUpdate(ChatRole.Assistant, chunk.Text)
                {
                    ResponseId = responseId, ModelId = model, ConversationId = conversation, CreatedAt = DateTimeOffset.UtcNow,
                };
                if (chunk.FinishReason is { } finish)
                {
                    update.FinishReason = finish == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;
                    if (chunk.Usage is { } u)
                        update.Contents.Add(new UsageContent(new UsageDetails
                        {
                            InputTokenCount = u.PromptTokens, OutputTokenCount = u.CompletionTokens, TotalTokenCount = u.PromptTokens + u.CompletionTokens,
                        }));
                }
                yield return update;
            }
        }
        finally
        {
            if (conversation is null) await CloseQuietly(session);
        }
    }

    private GenerateRequest ToRequest(List<ChatMessage> messages, ChatOptions? options)
    {
        if (messages.Count == 0) throw new ArgumentException("at least one message is needed", nameof(messages));
        if (options?.Tools is { Count: > 0 }) throw new NotSupportedException("Strata does not run tools");
        if (options?.ResponseFormat is ChatResponseFormatJson) throw new NotSupportedException("Strata does not constrain output to JSON");
        // A conversation that continues sends what came after the last assistant message: the session holds the rest.
        int from = options?.ConversationId is null ? 0 : messages.FindLastIndex(m => m.Role == ChatRole.Assistant) + 1;
        var turns = messages.Skip(from).Select(m =>
        {
            if (m.Contents.Any(c => c is not (TextContent or UsageContent)))
                throw new NotSupportedException($"only text content is supported (a {m.Role} message has {m.Contents.First(c => c is not TextContent).GetType().Name})");
            return new ChatTurn(m.Role.Value, m.Text);
        }).ToArray();
        if (turns.Length == 0) throw new ArgumentException("no new message after the conversation's last reply", nameof(messages));
        return new GenerateRequest
        {
            Model = options?.ModelId ?? model,
            Messages = turns,
            MaxNewTokens = options?.MaxOutputTokens ?? DefaultMaxOutputTokens,
            Sampling = new SamplingSpec(options?.Temperature ?? 1.0, options?.TopK ?? 0, options?.TopP ?? 1.0),
            Seed = options?.Seed is long seed ? unchecked((ulong)seed) : null,
            StopStrings = options?.StopSequences?.ToArray() ?? [],
        };
    }

    private async Task CloseQuietly(string session)
    {
        try
        {
            await client.Orleans.GetGrain<ISessionGrain>(session).Close();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or StrataException)
        {
            // Its KV expires at the stages after the session TTL.
        }
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is not null ? null
        : serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("strata", null, model)
        : serviceType.IsInstanceOfType(this) ? this
        : serviceType.IsInstanceOfType(client) ? client
        : null;

    /// <inheritdoc />
    public void Dispose()
    {
        // The StrataClient belongs to the caller.
    }
}
