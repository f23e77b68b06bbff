using System.Text;
using Strata.Gateway;

namespace Strata.Fuzz.Tests;

/// <summary>Crashes the gateway body fuzzing found, each kept as a plain case.</summary>
public sealed class GatewayBodyRegressionTests
{
    private static OpenAiException Refused(string body, bool chat)
    {
        var e = Assert.Throws<OpenAiException>(() => GatewayBodyFuzzTests.Read(Encoding.UTF8.GetBytes(body), chat));
        Assert.Equal(400, e.Status);
        return e;
    }

    [Theory]
    [InlineData("""{"model":"m","prompt":"a\ud800b"}""", false, "prompt")]
    [InlineData("""{"model":"m","prompt":["\udc00"]}""", false, "prompt")]
    [InlineData("""{"model":"\ud800","prompt":"hi"}""", false, "model")]
    [InlineData("""{"model":"m","prompt":"hi","stop":["\ud800"]}""", false, "stop")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\ud800"}]}""", true, "messages[0].content")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"\ud800"}]}]}""", true, "messages[0].content[0].text")]
    public void LoneSurrogateEscapeIsA400NamingTheField(string body, bool chat, string param)
    {
        // Was InvalidOperationException from System.Text.Json's lazy decoding: a 500 "internal error" at the gateway.
        var e = Refused(body, chat);
        Assert.Equal(param, e.Param);
        Assert.Contains("not valid Unicode", e.Message);
    }

    [Fact]
    public void InvalidUtf8InAStringIsA400()
    {
        byte[] body = Encoding.UTF8.GetBytes("""{"model":"m","prompt":"a?b"}""");
        body[Array.IndexOf(body, (byte)'?')] = 0xFF;
        var e = Assert.Throws<OpenAiException>(() => GatewayBodyFuzzTests.Read(body, chat: false));
        Assert.Equal(("prompt", 400), (e.Param, e.Status));
    }
}
