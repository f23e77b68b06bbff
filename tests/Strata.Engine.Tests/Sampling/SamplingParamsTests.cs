using Strata.Engine.Sampling;

namespace Strata.Engine.Tests.Sampling;

public sealed class SamplingParamsTests
{
    [Fact]
    public void Defaults_are_plain_sampling()
    {
        var p = new SamplingParams();
        Assert.Equal(1.0, p.Temperature);
        Assert.Equal(0, p.TopK);
        Assert.Equal(1.0, p.TopP);
        Assert.Null(p.Seed);
        Assert.Equal(128, p.MaxNewTokens);
        Assert.Empty(p.StopIds);
        Assert.Empty(p.StopStrings);
        p.Validate();
        Assert.True(SamplingParams.Greedy.IsGreedy);
    }

    public static TheoryData<SamplingParams, string> Invalid => new()
    {
        { new SamplingParams { Temperature = -0.1 }, "temperature" },
        { new SamplingParams { Temperature = double.NaN }, "temperature" },
        { new SamplingParams { TopK = -1 }, "top_k" },
        { new SamplingParams { TopP = 0 }, "top_p" },
        { new SamplingParams { TopP = 1.5 }, "top_p" },
        { new SamplingParams { MaxNewTokens = 0 }, "max_new_tokens" },
        { new SamplingParams { StopIds = [-1] }, "stop_token_ids" },
        { new SamplingParams { StopStrings = ["ok", ""] }, "stop" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_names_the_field(SamplingParams p, string field)
    {
        var e = Assert.Throws<ArgumentException>(p.Validate);
        Assert.Equal(field, e.ParamName);
        Assert.StartsWith(field + " ", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new Sampler(p));
    }
}
