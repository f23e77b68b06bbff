using System.Text;
using System.Text.Json;
using Strata.Contracts;

namespace Strata.Gateway.Tests;

/// <summary>The gateway's HTTP contract with a plain HttpClient: keys, limits, sessions, SSE, bounds, errors.</summary>
[Collection(GatewayCollection.Name)]
public sealed class GatewayHttpTests(GatewayFixture fx)
{
    private static object Completion(int maxTokens = 4, bool stream = false) =>
        new { model = GatewayFixture.Model, prompt = "Once upon a time", max_tokens = maxTokens, temperature = 0, stream };

    [Fact]
    public async Task Health_needs_no_key_and_every_other_route_does()
    {
        Assert.Equal(200, (await fx.Send(fx.Request(HttpMethod.Get, "/health", null))).Status);
        foreach (var (method, path) in new[] { (HttpMethod.Get, "/ready"), (HttpMethod.Get, "/v1/models"), (HttpMethod.Post, "/v1/completions"),
                     (HttpMethod.Post, "/v1/chat/completions"), (HttpMethod.Get, "/v1/sessions/x") })
        {
            var missing = await fx.Send(fx.Request(method, path, null, "{}"));
            Assert.Equal(401, missing.Status);
            Assert.Equal("invalid_api_key", missing.Error.GetProperty("code").GetString());
            var wrong = await fx.Send(fx.Request(method, path, "sk-not-a-key", "{}"));
            Assert.Equal(401, wrong.Status);
            Assert.Contains("incorrect API key", wrong.Error.GetProperty("message").GetString());
        }
    }

    [Fact]
    public async Task Models_and_ready_list_the_deployed_models()
    {
        var models = await fx.Send(fx.Request(HttpMethod.Get, "/v1/models", "alice"));
        Assert.Equal(200, models.Status);
        var ids = models.Json.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Contains(GatewayFixture.Model, ids);
        Assert.Contains(GatewayFixture.NoTemplateModel, ids);
        var ready = await fx.Send(fx.Request(HttpMethod.Get, "/ready", "alice"));
        Assert.Equal(200, ready.Status);
    }

    [Fact]
    public async Task Streaming_is_sse_ending_with_done_and_the_usage_chunk_when_asked()
    {
        var reply = await fx.Post("/v1/chat/completions", "alice", new
        {
            model = GatewayFixture.Model, messages = new[] { new { role = "user", content = "Once upon a time" } },
            max_completion_tokens = 8, temperature = 0, stream = true, stream_options = new { include_usage = true },
        });
        Assert.Equal(200, reply.Status);
        Assert.Equal("text/event-stream", reply.MediaType);
        var events = reply.Body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        var usage = chunks[^1];
        Assert.Equal(0, usage.GetProperty("choices").GetArrayLength());
        Assert.Equal(8, usage.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", chunks[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Requests_per_second_are_limited_per_key_with_Retry_After()
    {
        // "slow" has a bucket of one request a second: of three sent at once, at most two get through.
        var replies = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => fx.Post("/v1/completions", "slow", Completion(1))));
        var refused = replies.Where(r => r.Status == 429).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, r =>
        {
            Assert.Equal("rate_limit_error", r.Error.GetProperty("type").GetString());
            Assert.InRange(r.RetryAfter!.Value.TotalSeconds, 1, 60);
        });
        // Another key is not affected.
        Assert.Equal(200, (await fx.Post("/v1/completions", "bob", Completion(1))).Status);
    }

    [Fact]
    public async Task Tokens_per_minute_are_limited_per_key()
    {
        // "thrifty" has 20 tokens a minute: a 16-token completion (plus its prompt) uses them up.
        Assert.Equal(200, (await fx.Post("/v1/completions", "thrifty", Completion(16))).Status);
        var refused = await fx.Post("/v1/completions", "thrifty", Completion(1));
        Assert.Equal(429, refused.Status);
        Assert.Contains("tokens this minute", refused.Error.GetProperty("message").GetString());
        Assert.InRange(refused.RetryAfter!.Value.TotalSeconds, 1, 60);
    }

    [Fact]
    public async Task A_session_belongs_to_the_key_that_created_it()
    {
        string session = "owned-" + Guid.NewGuid().ToString("N")[..8];
        var first = await fx.Post("/v1/completions", "alice", Completion(), session);
        Assert.Equal(200, first.Status);
        var next = await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.Model, prompt = " The end.", max_tokens = 2, temperature = 0 }, session);
        Assert.Equal(200, next.Status);
        var info = await fx.Send(fx.Request(HttpMethod.Get, $"/v1/sessions/{session}", "alice"));
        Assert.Equal(200, info.Status);
        Assert.True(info.Json.GetProperty("history_tokens").GetInt32() > 6);

        foreach (var reply in new[]
                 {
                     await fx.Send(fx.Request(HttpMethod.Get, $"/v1/sessions/{session}", "bob")),
                     await fx.Post("/v1/completions", "bob", Completion(), session),
                     await fx.Send(fx.Request(HttpMethod.Delete, $"/v1/sessions/{session}", "bob")),
                 })
        {
            Assert.Equal(404, reply.Status);
            Assert.Equal("session_not_found", reply.Error.GetProperty("code").GetString());
        }
        Assert.Equal(200, (await fx.Send(fx.Request(HttpMethod.Delete, $"/v1/sessions/{session}", "alice"))).Status);
        Assert.Equal(404, (await fx.Send(fx.Request(HttpMethod.Get, $"/v1/sessions/{session}", "alice"))).Status);
    }

    [Fact]
    public async Task A_client_that_disconnects_cancels_the_turn_and_frees_the_kv_at_every_stage()
    {
        string session = "gone-" + Guid.NewGuid().ToString("N")[..8];
        // A raw socket, closed with a reset after the first event: HttpClient would drain the response first.
        string body = JsonSerializer.Serialize(Completion(400, stream: true));
        using (var socket = new System.Net.Sockets.TcpClient())
        {
            await socket.ConnectAsync(fx.Url.Host, fx.Url.Port);
            var stream = socket.GetStream();
            string head = $"POST /v1/completions HTTP/1.1\r\nHost: {fx.Url.Authority}\r\nAuthorization: Bearer {GatewayFixture.Keys["alice"]}\r\n" +
                          $"X-Strata-Session: {session}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n";
            await stream.WriteAsync(Encoding.UTF8.GetBytes(head + body));
            var seen = new StringBuilder();
            var buffer = new byte[4096];
            while (!seen.ToString().Contains("data: "))
            {
                int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(GatewayFixture.Deadline);
                Assert.True(n > 0, $"the gateway closed the stream: {seen}");
                seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
            }
            Assert.StartsWith("HTTP/1.1 200", seen.ToString());
            socket.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        }
        // The session stops generating and holds no KV at any stage (polled: the release crosses two silos).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        SessionInfo info;
        Orleans.Runtime.RequestContext.Clear();
        do
        {
            info = await fx.Client.Orleans.GetGrain<ISessionGrain>(session).GetInfo();
            if (info.GeneratingTurn is null && !info.HoldsKv) break;
            await Task.Delay(50);
        } while (DateTime.UtcNow < deadline);
        Assert.Null(info.GeneratingTurn);
        Assert.False(info.HoldsKv);
        Assert.InRange(info.HistoryTokens, 6, 100); // it stopped well before its 400 tokens
    }

    public static TheoryData<string, string, string> Bad => new()
    {
        { """{"model":"stories260K","prompt":"x","max_tokens":0}""", "max_tokens", "between 1 and 400" },
        { """{"model":"stories260K","prompt":"x","max_tokens":401}""", "max_tokens", "between 1 and 400" },
        { """{"model":"stories260K","prompt":"x","max_tokens":99999999999}""", "max_tokens", "32-bit" },
        { """{"model":"stories260K","prompt":"x","temperature":2.5}""", "temperature", "between 0 and 2" },
        { """{"model":"stories260K","prompt":"x","top_p":0}""", "top_p", "(0, 1]" },
        { """{"model":"stories260K","prompt":"x","n":2}""", "n", "n must be 1" },
        { """{"model":"stories260K","prompt":"x","seed":"abc"}""", "seed", "integer" },
        { """{"model":"stories260K","prompt":"x","stop":["a","b","c","d","e"]}""", "stop", "at most 4" },
        { """{"model":"stories260K","prompt":"x","stop":[""]}""", "stop", "1 to 64" },
        { $$"""{"model":"stories260K","prompt":"x","stop":"{{new string('s', 65)}}"}""", "stop", "1 to 64" },
        { """{"model":"stories260K","prompt":"x","stop":7}""", "stop", "string or a list" },
        { """{"model":"stories260K","prompt":"x","tools":[{}]}""", "tools", "not supported" },
        { """{"model":"stories260K","prompt":"x","presence_penalty":1}""", "presence_penalty", "not supported" },
        { """{"model":"stories260K","prompt":["a","b"]}""", "prompt", "batches" },
        { """{"model":"stories260K","prompt":[1,-2]}""", "prompt", "token id" },
        { """{"model":"stories260K"}""", "prompt", "required" },
        { """{"prompt":"x"}""", "model", "required" },
        { """{"model":"stories260K","prompt":"x","stream":"yes"}""", "stream", "true or false" },
    };

    [Theory]
    [MemberData(nameof(Bad))]
    public async Task Out_of_bounds_fields_get_a_400_naming_the_field(string body, string param, string says)
    {
        var reply = await fx.Send(fx.Request(HttpMethod.Post, "/v1/completions", "alice", body));
        Assert.Equal(400, reply.Status);
        Assert.Equal("invalid_request_error", reply.Error.GetProperty("type").GetString());
        Assert.Equal(param, reply.Error.GetProperty("param").GetString());
        Assert.Contains(says, reply.Error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Chat_bounds_and_roles_are_checked()
    {
        var tooMany = await fx.Post("/v1/chat/completions", "alice", new
        {
            model = GatewayFixture.Model, messages = Enumerable.Range(0, 300).Select(_ => new { role = "user", content = "a" }).ToArray(),
        });
        Assert.Equal(400, tooMany.Status);
        Assert.Equal("messages", tooMany.Error.GetProperty("param").GetString());
        var role = await fx.Post("/v1/chat/completions", "alice", new { model = GatewayFixture.Model, messages = new[] { new { role = "wizard", content = "a" } } });
        Assert.Equal(400, role.Status);
        Assert.Equal("messages[0].role", role.Error.GetProperty("param").GetString());
        var empty = await fx.Post("/v1/chat/completions", "alice", new { model = GatewayFixture.Model, messages = Array.Empty<object>() });
        Assert.Equal(400, empty.Status);
    }

    [Fact]
    public async Task Malformed_and_oversized_bodies_are_refused_with_the_openai_shape()
    {
        var malformed = await fx.Send(fx.Request(HttpMethod.Post, "/v1/completions", "alice", "{\"model\": "));
        Assert.Equal(400, malformed.Status);
        Assert.Contains("not valid JSON", malformed.Error.GetProperty("message").GetString());
        var notObject = await fx.Send(fx.Request(HttpMethod.Post, "/v1/completions", "alice", "[1,2]"));
        Assert.Equal(400, notObject.Status);
        string big = JsonSerializer.Serialize(new { model = GatewayFixture.Model, prompt = new string('a', 70_000) });
        var oversized = await fx.Send(fx.Request(HttpMethod.Post, "/v1/completions", "alice", big));
        Assert.Equal(413, oversized.Status);
        Assert.Equal("request_too_large", oversized.Error.GetProperty("code").GetString());
        var text = fx.Request(HttpMethod.Post, "/v1/completions", "alice");
        text.Content = new StringContent("hello", Encoding.UTF8, "text/plain");
        Assert.Equal(415, (await fx.Send(text)).Status);
    }

    [Fact]
    public async Task Unknown_models_and_models_without_a_chat_template_get_clear_errors()
    {
        var unknown = await fx.Post("/v1/completions", "alice", new { model = "no-such-model", prompt = "x" });
        Assert.Equal(404, unknown.Status);
        Assert.Equal("model_not_found", unknown.Error.GetProperty("code").GetString());
        var noTemplate = await fx.Post("/v1/chat/completions", "alice",
            new { model = GatewayFixture.NoTemplateModel, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2 });
        Assert.Equal(400, noTemplate.Status);
        string message = noTemplate.Error.GetProperty("message").GetString()!;
        Assert.Contains("no usable chat template", message);
        Assert.DoesNotContain("/", message.Replace("/v1/completions", "")); // no path of the silo's file system
        // Plain completions still work on it.
        Assert.Equal(200, (await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.NoTemplateModel, prompt = "hi", max_tokens = 2 })).Status);
    }

    [Fact]
    public async Task Unknown_routes_are_404_in_the_openai_shape()
    {
        var reply = await fx.Send(fx.Request(HttpMethod.Get, "/v1/engines", "alice"));
        Assert.Equal(404, reply.Status);
        Assert.Equal("unknown_url", reply.Error.GetProperty("code").GetString());
    }
}
