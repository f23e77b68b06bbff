using System.IO.Pipelines;
using System.Text;

namespace Strata.Gateway.Tests;

/// <summary>The stream's events, byte for byte, as the official clients parse them.</summary>
public sealed class ChunkEncoderTests
{
    private static async Task<string> Written(bool chat, Action<ChunkEncoder> write)
    {
        var pipe = new Pipe();
        var events = new ChunkEncoder(pipe.Writer, "cmpl-1", chat ? "chat.completion.chunk" : "text_completion", 1700000000, "m\"1", chat);
        write(events);
        await events.Flush(CancellationToken.None);
        await pipe.Writer.CompleteAsync();
        var read = await pipe.Reader.ReadAtLeastAsync(1);
        string text = Encoding.UTF8.GetString(read.Buffer);
        pipe.Reader.AdvanceTo(read.Buffer.End);
        return text;
    }

    private const string Head = """data: {"id":"cmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m\"1","choices":""";

    // Text is escaped as the gateway's JSON bodies are (OpenAiResponses.Json): what JSON needs, and characters
    // outside the BMP as surrogate escapes.
    [Fact]
    public async Task Chat_deltas_carry_the_role_first_then_text_then_an_empty_delta_with_the_finish_reason()
    {
        string text = await Written(chat: true, e =>
        {
            e.Delta("", "assistant", null);
            e.Delta("Once \"upon\"\n<é>😀", null, null);
            e.Delta(null, null, "length");
            e.Usage(3, 2);
            e.Done();
        });
        Assert.Equal(
            Head + """[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}""" + "\n\n" +
            Head + """[{"index":0,"delta":{"content":"Once \"upon\"\n<é>\uD83D\uDE00"},"logprobs":null,"finish_reason":null}]}""" + "\n\n" +
            Head + """[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}""" + "\n\n" +
            Head + """[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}""" + "\n\n" +
            "data: [DONE]\n\n", text);
    }

    [Fact]
    public async Task Completion_chunks_carry_the_text()
    {
        string text = await Written(chat: false, e =>
        {
            e.Delta(" time", null, null);
            e.Delta(null, null, "stop");
        });
        string head = Head.Replace("chat.completion.chunk", "text_completion", StringComparison.Ordinal);
        Assert.Equal(
            head + """[{"text":" time","index":0,"logprobs":null,"finish_reason":null}]}""" + "\n\n" +
            head + """[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}""" + "\n\n", text);
    }
}
