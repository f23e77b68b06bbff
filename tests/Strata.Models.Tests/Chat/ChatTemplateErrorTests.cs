using Strata.Models.Chat;

namespace Strata.Models.Tests.Chat;

/// <summary>Bad templates and runaway templates fail with a ChatTemplateException that says what and where.</summary>
public sealed class ChatTemplateErrorTests
{
    private static ChatTemplateException Fails(string template, ChatTemplateOptions? options = null) =>
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template).Render([new("user", "hi")], options));

    [Theory]
    [InlineData("{% if x %}no end", 1, 17, "'if' opened at line 1, column 4 is not closed: expected 'elif' or 'else' or 'endif'")]
    [InlineData("line one\n{{ x + }}", 2, 8, "unexpected '}}'")]
    [InlineData("{{ x | frobnicate }}", 1, 8, "unknown filter 'frobnicate'")]
    [InlineData("{{ x is frob }}", 1, 9, "unknown test 'frob'")]
    [InlineData("{% frob %}", 1, 4, "unknown tag 'frob'")]
    [InlineData("{% endfor %}", 1, 4, "unexpected 'endfor': no open block it could close")]
    [InlineData("ok\n  {{ 'abc }}", 2, 6, "unterminated string literal")]
    [InlineData("{{ x ", 1, 1, "unclosed tag: '{{' has no matching '}}'")]
    [InlineData("a {# b", 1, 3, "unclosed comment: '{#' has no matching '#}'")]
    [InlineData("{% for x in y %}{% endif %}", 1, 20, "unexpected 'endif': no open block it could close")]
    [InlineData("{% break %}", 1, 4, "'break' outside a loop")]
    [InlineData("{{ 1 ? 2 }}", 1, 6, "unexpected character '?'")]
    [InlineData("{{ 99999999999999999999 }}", 1, 4, "integer literal '99999999999999999999' is too large")]
    public void Syntax_errors_give_line_and_column(string template, int line, int column, string problem)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(template));

        Assert.Equal(ChatTemplateErrorKind.Syntax, ex.Kind);
        Assert.Equal(problem, ex.Problem);
        Assert.Equal((line, column), (ex.Line, ex.Column));
        Assert.Equal($"chat template: line {line}, column {column}: {problem}", ex.Message);
    }

    [Theory]
    [InlineData("{{ foo(1) }}", 1, 4, "'foo' is undefined")]
    [InlineData("{{ 'a' + 1 }}", 1, 8, "unsupported operand type(s) for +: 'str' and 'int'")]
    [InlineData("\n{{ messages[3].content }}", 2, 15, "list index out of range")]
    [InlineData("{{ 1 // 0 }}", 1, 6, "division by zero")]
    [InlineData("{% set x = 1 %}{% set x.y = 2 %}", 1, 19, "cannot assign attribute 'y' on 'x': it is not a namespace()")]
    [InlineData("{% for a, b in [1] %}{% endfor %}", 1, 4, "cannot unpack int into 2 loop variables")]
    [InlineData("{{ none.x.y }}", 1, 10, "'NoneType object' has no attribute 'x'")]
    [InlineData("{{ 'x'.zfill(3) }}", 1, 7, "'str object' has no attribute 'zfill'")]
    public void Render_errors_give_line_and_column(string template, int line, int column, string problem)
    {
        var ex = Fails(template);

        Assert.Equal(ChatTemplateErrorKind.Render, ex.Kind);
        Assert.Equal(problem, ex.Problem);
        Assert.Equal((line, column), (ex.Line, ex.Column));
    }

    [Fact]
    public void Raise_exception_is_a_rejection_with_the_templates_own_message()
    {
        var ex = Fails("{% if messages | length < 2 %}{{ raise_exception('Need ' ~ 2 ~ ' turns') }}{% endif %}");

        Assert.Equal(ChatTemplateErrorKind.Rejected, ex.Kind);
        Assert.Equal("Need 2 turns", ex.Problem);
        Assert.Equal((1, 34), (ex.Line, ex.Column));
    }

    [Theory]
    [InlineData("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")]
    [InlineData("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")]
    [InlineData("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}")]
    [InlineData("{{ 'x' * 1000000000000 }}")]
    [InlineData("{{ range(1000000000) | length }}")]
    [InlineData("{{ 2 ** 100 }}")]
    public void Runaway_templates_stop_at_a_bound(string template)
    {
        var ex = Fails(template, new ChatTemplateOptions { MaxOutputLength = 100_000 });

        Assert.True(ex.Kind is ChatTemplateErrorKind.LimitExceeded or ChatTemplateErrorKind.Render, ex.Message);
        Assert.NotNull(ex.Line);
    }

    [Fact]
    public void Deep_nesting_is_a_syntax_error_not_a_stack_overflow()
    {
        var parens = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ " + new string('(', 10_000) + "1" + new string(')', 10_000) + " }}"));
        var ifs = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse(string.Concat(Enumerable.Repeat("{% if true %}", 5_000))));
        var nots = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Parse("{{ " + string.Concat(Enumerable.Repeat("not ", 5_000)) + "x }}"));

        Assert.All([parens, ifs, nots], ex => Assert.Contains("nests deeper than", ex.Problem, StringComparison.Ordinal));
    }

    [Fact]
    public void A_long_operator_chain_evaluates_or_stops_cleanly()
    {
        string sum = "{{ " + string.Join(" + ", Enumerable.Repeat("1", 300)) + " }}";
        string tooLong = "{{ " + string.Join(" + ", Enumerable.Repeat("1", 5_000)) + " }}";

        Assert.Equal("300", ChatTemplate.Parse(sum).Render([]));
        Assert.Equal(ChatTemplateErrorKind.LimitExceeded, Fails(tooLong).Kind);
    }
}
