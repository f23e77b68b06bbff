using Strata.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Strata.Contracts;

namespace Strata.Gateway.Tests;

/// <summary>Failures inside the cluster reach HTTP clients as typed OpenAI errors: a prompt the model's tokenizer
/// cannot encode is a 400 naming the field, and no message names a path of the silo's file system.</summary>
[Collection(GatewayCollection.Name)]
public sealed class GatewayErrorTests(GatewayFixture fx)
{
    private void AssertNoPaths(Reply reply)
    {
        Assert.DoesNotContain(fx.Root, reply.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), reply.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", reply.Body, StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public async Task A_prompt_the_tokenizer_cannot_encode_is_a_400_naming_prompt()
    {
        // Was a 500 "internal error": the session's tokenizer threw a ModelFormatException, which has no Orleans
        // codec, so the gateway got a CodecNotFoundException naming it.
        foreach (bool stream in new[] { false, true })
        {
            var reply = await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.BadEncodeModel, prompt = GatewayFixture.BadPrompt, max_tokens = 2, stream });
            Assert.Equal(400, reply.Status);
            Assert.Equal("invalid_request_error", reply.Error.GetProperty("type").GetString());
            Assert.Equal("prompt", reply.Error.GetProperty("param").GetString());
            Assert.Equal("invalid_prompt", reply.Error.GetProperty("code").GetString());
            string message = reply.Error.GetProperty("message").GetString()!;
            Assert.Contains($"tokenizer of model '{GatewayFixture.BadEncodeModel}' cannot encode the prompt", message);
            AssertNoPaths(reply);
        }
        // The same model serves a prompt its tokenizer can encode.
        Assert.Equal(200, (await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.BadEncodeModel, prompt = "Once upon a time", max_tokens = 2 })).Status);
    }

    [Fact]
    public async Task Chat_messages_the_tokenizer_cannot_encode_are_a_400_naming_messages()
    {
        var reply = await fx.Post("/v1/chat/completions", "alice", new
        {
            model = GatewayFixture.BadEncodeModel, messages = new[] { new { role = "user", content = GatewayFixture.BadPrompt } }, max_tokens = 2,
        });
        Assert.Equal(400, reply.Status);
        Assert.Equal("invalid_request_error", reply.Error.GetProperty("type").GetString());
        Assert.Equal("messages", reply.Error.GetProperty("param").GetString());
        Assert.Contains("cannot encode the messages", reply.Error.GetProperty("message").GetString());
        AssertNoPaths(reply);
    }

    [PermissionsFact]
    public async Task A_tokenizer_file_the_silo_cannot_read_is_a_typed_error_without_its_path()
    {
        // Was the system's message, "Access to the path '/.../tokenizer.json' is denied.", from the session.
        var reply = await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.LockedModel, prompt = "hi", max_tokens = 2 });
        Assert.True(reply.Status == 400, $"{reply.Status} {reply.Body}");
        Assert.Equal("invalid_request_error", reply.Error.GetProperty("type").GetString());
        string message = reply.Error.GetProperty("message").GetString()!;
        Assert.Contains($"{GatewayFixture.LockedModel}/tokenizer.json: cannot be read: Access to the path 'tokenizer.json' is denied", message);
        Assert.Contains($"package '<path>/{GatewayFixture.LockedModel}'", message); // deployed by its absolute path
        AssertNoPaths(reply);
    }

    [PermissionsFact]
    public async Task A_chat_template_the_silo_cannot_read_is_a_typed_error_without_its_path()
    {
        // Was a 500 "internal error": the session's UnauthorizedAccessException from reading chat_template.jinja.
        var reply = await fx.Post("/v1/chat/completions", "alice", new
        {
            model = GatewayFixture.LockedChatModel, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 2,
        });
        Assert.True(reply.Status == 500, $"{reply.Status} {reply.Body}");
        Assert.Equal("server_error", reply.Error.GetProperty("type").GetString());
        Assert.Equal("model_files_unreadable", reply.Error.GetProperty("code").GetString());
        Assert.Contains($"model '{GatewayFixture.LockedChatModel}'", reply.Error.GetProperty("message").GetString());
        AssertNoPaths(reply);
        // Completions do not need the template.
        Assert.Equal(200, (await fx.Post("/v1/completions", "alice", new { model = GatewayFixture.LockedChatModel, prompt = "hi", max_tokens = 2 })).Status);
    }

    [Fact]
    public void A_file_error_from_a_silo_names_no_path()
    {
        var handler = new CompletionHandler(fx.Client, new GatewayOptions(), NullLogger<CompletionHandler>.Instance);
        var denied = handler.Map(new UnauthorizedAccessException("Access to the path '/srv/strata/store/m/tokenizer_config.json' is denied."));
        Assert.Equal(500, denied.Status);
        Assert.Equal("model_files_unreadable", denied.Code);
        Assert.DoesNotContain("/srv", denied.Message, StringComparison.Ordinal);
        var missing = handler.Map(new FileNotFoundException("Could not find file '/srv/strata/store/m/model.safetensors'."));
        Assert.Equal("model_files_unreadable", missing.Code);
        Assert.DoesNotContain("/srv", missing.Message, StringComparison.Ordinal);
        // A cluster message that names a path keeps only the file's name; the gateway's routes are kept.
        var strata = handler.Map(new StrataException(ErrorCodes.InvalidRequest,
            "cannot deploy m: '/srv/strata/store/m/config.json' is not valid; use /v1/completions or C:\\models\\m\\x.bin"));
        Assert.Equal(400, strata.Status);
        Assert.Equal("cannot deploy m: '<path>/config.json' is not valid; use /v1/completions or <path>/x.bin", strata.Message);
    }
}
