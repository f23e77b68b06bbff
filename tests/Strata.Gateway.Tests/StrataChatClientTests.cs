using Microsoft.Extensions.AI;
using Strata.Client;

namespace Strata.Gateway.Tests;

/// <summary><see cref="StrataChatClient"/>: Microsoft.Extensions.AI straight over the Orleans client.</summary>
[Collection(GatewayCollection.Name)]
public sealed class StrataChatClientTests(GatewayFixture fx)
{
    private static ChatOptions Greedy(int tokens, string? conversation = null) => new() { Temperature = 0, MaxOutputTokens = tokens, ConversationId = conversation };

    [Fact]
    public async Task Streaming_and_whole_responses_equal_the_gateway_and_report_usage()
    {
        IChatClient chat = new StrataChatClient(fx.Client, GatewayFixture.Model);
        var http = await fx.Post("/v1/chat/completions", "alice", new
        {
            model = GatewayFixture.Model, messages = new[] { new { role = "user", content = "Once upon a time" } }, max_tokens = 24, temperature = 0,
        });
        string expected = http.Json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

        var whole = await chat.GetResponseAsync([new ChatMessage(ChatRole.User, "Once upon a time")], Greedy(24));
        Assert.Equal(expected, whole.Text);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(24, whole.Usage?.OutputTokenCount);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in chat.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Once upon a time")], Greedy(24))) updates.Add(u);
        Assert.True(updates.Count > 1);
        Assert.Equal(expected, updates.ToChatResponse().Text);
        Assert.Equal("strata", chat.GetService<ChatClientMetadata>()?.ProviderName);
    }

    [Fact]
    public async Task A_conversation_id_continues_one_session_and_sends_only_the_new_messages()
    {
        IChatClient chat = new StrataChatClient(fx.Client, GatewayFixture.Model);
        string id = "meai-conv-" + Guid.NewGuid().ToString("N")[..8];
        var history = new List<ChatMessage> { new(ChatRole.User, "Once upon a time") };
        var first = await chat.GetResponseAsync(history, Greedy(8, id));
        history.AddRange(first.Messages);
        history.Add(new ChatMessage(ChatRole.User, "The end."));
        var second = await chat.GetResponseAsync(history, Greedy(4, id));
        Assert.NotEmpty(second.Text);
        // The session holds both turns: the first prompt (BOS + 4 tokens), 8 generated, the new message, 4 generated;
        // had the whole history been sent again, the first turn's text would be in it twice.
        var info = await fx.Client.Orleans.GetGrain<Strata.Contracts.ISessionGrain>(id).GetInfo();
        int secondPrompt = second.Usage!.InputTokenCount!.Value > 0 ? (int)second.Usage.InputTokenCount.Value : 0;
        Assert.Equal((int)first.Usage!.InputTokenCount!.Value + 8 + secondPrompt + 4, info.HistoryTokens);
        Assert.True(secondPrompt < first.Usage.InputTokenCount + 8, $"the second turn resent the history ({secondPrompt} prompt tokens)");
    }

    [Fact]
    public async Task Tools_and_non_text_content_are_refused_before_anything_runs()
    {
        IChatClient chat = new StrataChatClient(fx.Client, GatewayFixture.Model);
        await Assert.ThrowsAsync<NotSupportedException>(() => chat.GetResponseAsync([new ChatMessage(ChatRole.User, "hi")],
            new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }));
        await Assert.ThrowsAsync<NotSupportedException>(() => chat.GetResponseAsync(
            [new ChatMessage(ChatRole.User, [new DataContent(new byte[] { 1 }, "image/png")])]));
    }
}
