using System.Text;
using System.Text.Json;
using CsCheck;
using Strata.Gateway;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// Bodies of <c>POST /v1/completions</c> and <c>/v1/chat/completions</c>: parsed as the gateway parses them (a
/// <see cref="JsonDocument"/> of depth 32, invalid JSON a 400) and read by <see cref="OpenAiRequest.Read"/>. Every
/// rejection must be a 400 <see cref="OpenAiException"/> that names the field; an accepted request must be inside
/// the gateway's bounds.
/// </summary>
public sealed class GatewayBodyFuzzTests(ITestOutputHelper output)
{
    private static readonly GatewayOptions Limits = new();

    internal const string Completion = """
        {"model":"stories","prompt":"Once upon a time","max_tokens":16,"temperature":0.7,"top_p":0.9,"seed":42,
         "stop":["\n\n","The end"],"n":1,"stream":true,"stream_options":{"include_usage":true},"user":"u1",
         "presence_penalty":0,"frequency_penalty":0,"logprobs":null}
        """;

    internal const string Chat = """
        {"model":"stories","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]},
         {"role":"assistant","content":"Hello"},{"role":"developer","content":null}],"max_completion_tokens":32,"temperature":0,
         "stop":"\n","stream":false,"seed":-1}
        """;

    [Fact]
    public void RandomBodiesAreReadOrRefusedWith400() =>
        Fuzz.Check(output, "gateway body", Gen.Byte.Array[0, 120].Select(Gen.Bool), c => Read(c.Item1, c.Item2), Typed, cases: 400,
            print: c => Encoding.UTF8.GetString(c.Item1));

    [Fact]
    public void MutatedBodiesAreReadOrRefusedWith400()
    {
        var gen = Gen.Bool.Select(Gen.Int, (chat, seed) => (JsonMutator.Mutate(chat ? Chat : Completion, seed), chat));
        Fuzz.Check(output, "gateway body", gen, c => Read(c.Item1, c.chat), Typed, cases: 1500,
            print: c => ConfigFuzzTests.Clip(Encoding.UTF8.GetString(c.Item1)));
    }

    // As CompletionHandler.ReadBody and Complete do, without the HTTP plumbing.
    internal static void Read(byte[] body, bool chat)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new OpenAiException(400, "invalid_request_error", $"the body is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            var r = OpenAiRequest.Read(doc.RootElement, chat, Limits);
            if (r.MaxTokens is < 1 || r.MaxTokens > Limits.MaxTokens || r.Stop.Length > Limits.MaxStopStrings
                || r.Stop.Any(s => s.Length is 0 || s.Length > Limits.MaxStopLength) || r.Temperature is < 0 or > 2
                || !(r.TopP is > 0 and <= 1) || (r.Prompt?.Length ?? 0) > Limits.MaxPromptChars
                || (r.Messages?.Sum(m => (long)m.Content.Length) ?? 0) > Limits.MaxPromptChars || (chat ? r.Messages is null : r.Prompt is null && r.PromptIds is null))
                throw new FuzzFailure($"accepted a request outside the bounds: {r}");
            _ = r.ToGenerate();
        }
    }

    private static readonly Func<Exception, string?> Typed = Fuzz.Only<OpenAiException>(e =>
        e.Status != 400 ? $"status {e.Status}, not 400"
        : e.Param is null && !e.Message.StartsWith("the body is not valid JSON", StringComparison.Ordinal) ? "the error names no field"
        : null);
}
