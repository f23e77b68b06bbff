using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Strata.Cli;

namespace Strata.Gateway.Tests;

/// <summary>The official OpenAI .NET SDK (and Microsoft.Extensions.AI over it) against the running gateway.</summary>
[Collection(GatewayCollection.Name)]
public sealed class OpenAiClientTests(GatewayFixture fx)
{
    private const string Prompt = "Once upon a time";
    private const int Tokens = 40;

    private ChatClient Chat(string who, Action<OpenAIClientOptions>? configure = null)
    {
        var options = new OpenAIClientOptions { Endpoint = new Uri(fx.Url, "/v1"), NetworkTimeout = TimeSpan.FromMinutes(1) };
        configure?.Invoke(options);
        return new ChatClient(GatewayFixture.Model, new ApiKeyCredential(GatewayFixture.Keys[who]), options);
    }

    private static ChatCompletionOptions Greedy => new() { Temperature = 0, MaxOutputTokenCount = Tokens };

    /// <summary>What <c>strata generate</c> prints for the prompt on the same package, one process, greedy.</summary>
    private async Task<(string Text, int Count)> Reference()
    {
        var stdout = new StringWriter();
        int code = await CliApp.RunAsync(["generate", "--model", fx.StoriesPackage, "--prompt", Prompt, "--max-new-tokens", Tokens.ToString(),
            "--temperature", "0", "--json"], stdout, new StringWriter()).WaitAsync(GatewayFixture.Deadline);
        Assert.Equal(0, code);
        var json = JsonDocument.Parse(stdout.ToString()).RootElement;
        return (json.GetProperty("text").GetString()!, json.GetProperty("generated_ids").GetArrayLength());
    }

    [Fact]
    public async Task Completion_route_is_greedy_exact_against_strata_generate()
    {
        var (text, count) = await Reference();
        var reply = await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.Model, prompt = Prompt, max_tokens = Tokens, temperature = 0 });
        Assert.Equal(200, reply.Status);
        var choice = reply.Json.GetProperty("choices")[0];
        Assert.Equal(text, choice.GetProperty("text").GetString());
        Assert.Equal(count, reply.Json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("text_completion", reply.Json.GetProperty("object").GetString());
    }

    [Fact]
    public async Task Sdk_chat_and_streaming_chat_with_usage_equal_strata_generate()
    {
        // stories260K's template joins the messages' text after BOS, so one user message is the plain prompt.
        var (text, count) = await Reference();
        var chat = Chat("alice");
        ChatCompletion whole = await chat.CompleteChatAsync([new UserChatMessage(Prompt)], Greedy);
        Assert.Equal(text, whole.Content[0].Text);
        Assert.Equal(count, whole.Usage.OutputTokenCount);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, whole.FinishReason);

        var streamed = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        OpenAI.Chat.ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], Greedy))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            usage = update.Usage ?? usage;
            finish = update.FinishReason ?? finish;
        }
        Assert.Equal(text, streamed.ToString());
        Assert.NotNull(usage);
        Assert.Equal(count, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
        Assert.Equal(OpenAI.Chat.ChatFinishReason.Length, finish);
    }

    [Fact]
    public async Task Microsoft_Extensions_AI_over_the_sdk_streams_the_same_text()
    {
        var (text, _) = await Reference();
        IChatClient client = Chat("alice").AsIChatClient();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync([new Microsoft.Extensions.AI.ChatMessage(ChatRole.User, Prompt)],
                           new ChatOptions { Temperature = 0, MaxOutputTokens = Tokens }))
            updates.Add(u);
        var response = updates.ToChatResponse();
        Assert.Equal(text, response.Text);
        Assert.Equal(Microsoft.Extensions.AI.ChatFinishReason.Length, response.FinishReason);
        Assert.NotNull(response.Usage);
    }

    [Fact]
    public async Task A_429_with_Retry_After_is_retried_by_the_sdk_and_then_succeeds()
    {
        // "single" may have one request in flight. A stream holds it; the SDK's call gets 429 with Retry-After,
        // the held stream is then closed, and the SDK's retry goes through.
        using var held = fx.Request(HttpMethod.Post, "/v1/completions", "single",
            JsonSerializer.Serialize(new { model = GatewayFixture.Model, prompt = Prompt, max_tokens = 400, stream = true, temperature = 0 }));
        var holding = await fx.Http.SendAsync(held, HttpCompletionOption.ResponseHeadersRead).WaitAsync(GatewayFixture.Deadline);
        Assert.Equal(200, (int)holding.StatusCode);
        var refused = new TaskCompletionSource();
        var statuses = new List<int>();
        var chat = Chat("single", o => o.AddPolicy(new StatusRecorder(statuses, refused), PipelinePosition.PerTry));
        var call = chat.CompleteChatAsync([new UserChatMessage(Prompt)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 4 });
        await refused.Task.WaitAsync(GatewayFixture.Deadline);
        holding.Dispose(); // the client goes away: the gateway cancels that turn and frees the permit
        ChatCompletion answer = await call.WaitAsync(GatewayFixture.Deadline);
        Assert.NotEmpty(answer.Content[0].Text);
        Assert.Equal(429, statuses[0]);
        Assert.Equal(200, statuses[^1]);
    }

    private sealed class StatusRecorder(List<int> statuses, TaskCompletionSource refused) : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            ProcessNext(message, pipeline, currentIndex);
            Record(message);
        }

        public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            await ProcessNextAsync(message, pipeline, currentIndex);
            Record(message);
        }

        private void Record(PipelineMessage message)
        {
            int status = message.Response!.Status;
            lock (statuses) statuses.Add(status);
            if (status == 429)
            {
                Assert.True(message.Response.Headers.TryGetValue("Retry-After", out string? after) && int.Parse(after!) is >= 1 and <= 60);
                refused.TrySetResult();
            }
        }
    }
}
