using Strata.Engine.Sampling;

namespace Strata.Engine.Tests.Sampling;

public sealed class StopCheckerTests
{
    /// <summary>Feeds (id, text) pairs; returns the emitted text and the final decision.</summary>
    private static (string Emitted, StopDecision Last) Run(StopChecker checker, params (int Id, string Text)[] tokens)
    {
        var emitted = new System.Text.StringBuilder();
        StopDecision last = default;
        foreach (var (id, text) in tokens)
        {
            last = checker.Append(id, text);
            emitted.Append(last.Text);
            if (last.IsStopped) break;
        }
        return (emitted.ToString(), last);
    }

    [Fact]
    public void Stop_string_split_across_tokens_is_found_and_never_emitted()
    {
        var checker = new StopChecker([], ["The end."], 100);
        var d = checker.Append(10, "Happy. The e");
        Assert.Equal("Happy. ", d.Text);      // "The e" might begin the stop string
        Assert.Equal("The e", checker.HeldBack);
        Assert.False(d.IsStopped);

        d = checker.Append(11, "nd.");
        Assert.Equal("", d.Text);
        Assert.Equal(FinishReasons.Stop, d.FinishReason);
        Assert.Equal("The end.", d.StopString);
        Assert.True(checker.IsStopped);
        Assert.Throws<InvalidOperationException>(() => checker.Append(12, "x"));
    }

    [Fact]
    public void Held_text_is_released_when_it_stops_matching()
    {
        var (emitted, last) = Run(new StopChecker([], ["The end."], 100),
            (1, "The e"), (2, "nd"), (3, "ing was"), (4, " happy. The end. More"));
        Assert.Equal("The ending was happy. ", emitted);
        Assert.Equal(FinishReasons.Stop, last.FinishReason);
    }

    [Fact]
    public void Text_after_the_stop_string_in_the_same_token_is_dropped()
    {
        var (emitted, last) = Run(new StopChecker([], ["\n\n", "END"], 100),
            (1, "a"), (2, "b\n"), (3, "\nc END"));
        Assert.Equal("ab", emitted);
        Assert.Equal("\n\n", last.StopString);
    }

    [Fact]
    public void Stop_id_stops_without_emitting_its_text_but_releases_held_text()
    {
        var checker = new StopChecker([2], ["STOP"], 100);
        Assert.Equal("x ", checker.Append(5, "x ST").Text);
        var d = checker.Append(2, "</s>");
        Assert.Equal("ST", d.Text);
        Assert.Equal(FinishReasons.Stop, d.FinishReason);
        Assert.Equal(2, d.StopId);
        Assert.Equal(2, checker.Generated);
    }

    [Fact]
    public void Length_stop_flushes_everything()
    {
        var (emitted, last) = Run(new StopChecker([], ["STOP"], 3), (1, "a"), (2, "b"), (3, "S"));
        Assert.Equal("abS", emitted);
        Assert.Equal(FinishReasons.Length, last.FinishReason);

        // A stop on the last allowed token is still "stop".
        (_, last) = Run(new StopChecker([9], [], 2), (1, "a"), (9, ""));
        Assert.Equal(FinishReasons.Stop, last.FinishReason);
    }

    [Fact]
    public void Without_stop_strings_text_streams_straight_through()
    {
        var checker = StopChecker.For(new SamplingParams { MaxNewTokens = 10 });
        Assert.Equal("Hello", checker.Append(1, "Hello").Text);
        Assert.Equal("", checker.HeldBack);
        Assert.Equal("", checker.Flush());
    }

    [Fact]
    public void Flush_returns_held_text()
    {
        var checker = new StopChecker([], ["abc"], 10);
        Assert.Equal("x", checker.Append(1, "xab").Text);
        Assert.Equal("ab", checker.Flush());
        Assert.Equal("", checker.HeldBack);
    }
}
