using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;

namespace Strata.Gateway;

/// <summary>
/// Writes the <c>data:</c> events of one streamed turn straight into the response's pipe. The fields every chunk
/// shares (<c>id</c>, <c>object</c>, <c>created</c>, <c>model</c>) are encoded once per turn, and one JSON writer is
/// reused, so a token costs the JSON of its own text and no allocation of objects or strings. Nothing is sent until
/// <see cref="Flush"/>.
/// </summary>
internal sealed class ChunkEncoder
{
    private static readonly JsonWriterOptions Options = new() { Encoder = OpenAiResponses.Json.Encoder };

    private readonly PipeWriter _output;
    private readonly bool _chat;
    // "data: {"id":"...","object":"...","created":N,"model":"...","choices":" (the rest of each event follows).
    private readonly byte[] _head;
    private readonly Utf8JsonWriter _json;

    public ChunkEncoder(PipeWriter output, string id, string chunkObject, long created, string model, bool chat)
    {
        _output = output;
        _chat = chat;
        var head = new ArrayBufferWriter<byte>(128 + model.Length);
        head.Write("data: "u8);
        using (var json = new Utf8JsonWriter(head, Options with { SkipValidation = true }))
        {
            json.WriteStartObject();
            json.WriteString("id", id);
            json.WriteString("object", chunkObject);
            json.WriteNumber("created", created);
            json.WriteString("model", model);
            json.WritePropertyName("choices");
            json.Flush(); // the object stays open: each event closes it
        }
        _head = head.WrittenSpan.ToArray();
        _json = new Utf8JsonWriter(output, Options);
    }

    /// <summary>A chunk with one choice: for chat a delta with <paramref name="role"/> (first chunk only) and
    /// <paramref name="text"/>, empty on the last chunk; for completions the text.</summary>
    public void Delta(string? text, string? role, string? finish)
    {
        _output.Write(_head);
        _json.Reset(_output);
        _json.WriteStartArray();
        _json.WriteStartObject();
        if (_chat)
        {
            _json.WriteNumber("index", 0);
            _json.WriteStartObject("delta");
            if (text is not null)
            {
                if (role is not null) _json.WriteString("role", role);
                _json.WriteString("content", text);
            }
            _json.WriteEndObject();
        }
        else
        {
            _json.WriteString("text", text ?? "");
            _json.WriteNumber("index", 0);
        }
        _json.WriteNull("logprobs");
        if (finish is null) _json.WriteNull("finish_reason");
        else _json.WriteString("finish_reason", finish);
        _json.WriteEndObject();
        _json.WriteEndArray();
        _json.Flush();
        _output.Write("}\n\n"u8);
    }

    /// <summary>The usage chunk: no choices, and OpenAI's usage object.</summary>
    public void Usage(int prompt, int completion)
    {
        _output.Write(_head);
        _output.Write("[],\"usage\":"u8);
        _json.Reset(_output);
        _json.WriteStartObject();
        _json.WriteNumber("prompt_tokens", prompt);
        _json.WriteNumber("completion_tokens", completion);
        _json.WriteNumber("total_tokens", prompt + completion);
        _json.WriteEndObject();
        _json.Flush();
        _output.Write("}\n\n"u8);
    }

    /// <summary>The end of the stream, as OpenAI's clients expect it.</summary>
    public void Done() => _output.Write("data: [DONE]\n\n"u8);

    /// <summary>Sends what was written.</summary>
    public async Task Flush(CancellationToken cancellation) => await _output.FlushAsync(cancellation);
}
