using Strata.Models.Chat;

namespace Strata.Models.Tests.Chat;

/// <summary>The Jinja features chat templates rely on, each against what Jinja (as transformers configures it) prints.</summary>
public sealed class JinjaSubsetTests
{
    private static string R(string template, Dictionary<string, object?>? variables = null, TimeProvider? time = null) =>
        ChatTemplate.Parse(template).Render([new("user", "hi")], new ChatTemplateOptions
        {
            Variables = variables ?? [],
            TimeProvider = time ?? TimeProvider.System,
        });

    [Theory]
    [InlineData("a  {%- if true -%}  b  {%- endif -%}  c", "abc")]
    [InlineData("a {{- 'x' -}} b", "axb")]
    [InlineData("a {{ 'x' }} b", "a x b")]
    [InlineData("{% if true %}\n    yes\n{% endif %}\nend", "    yes\nend")]
    [InlineData("  {% if true %}x{% endif %}", "x")]
    [InlineData("  {{ 'x' }}", "  x")]
    [InlineData("a {% if true %}x{% endif %}", "a x")]
    [InlineData("a{# note #}b", "ab")]
    [InlineData("a\n  {#- note -#}\n  b", "ab")]
    [InlineData("{{ 'x' }}\n", "x")]
    [InlineData("{{ 'x' }}\n\n", "x\n")]
    [InlineData("line\r\n{{ 'x' }}", "line\nx")]
    [InlineData("{% generation %}x{% endgeneration %}", "x")]
    public void Whitespace_follows_trim_blocks_lstrip_blocks_and_dash_markers(string template, string expected) =>
        Assert.Equal(expected, R(template));

    [Fact]
    public void Loop_variables_filters_else_and_loop_controls()
    {
        Assert.Equal("10TrueFalse3|21FalseFalse3|32FalseTrue3|",
            R("{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"));
        Assert.Equal("1:2/2 2:4/2 ", R("{% for x in [1,2,3,4] if x is even %}{{ loop.index }}:{{ x }}/{{ loop.length }} {% endfor %}"));
        Assert.Equal("empty", R("{% for x in [] %}x{% else %}empty{% endfor %}"));
        Assert.Equal("013", R("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"));
        Assert.Equal("a=1;b=2;", R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"));
        Assert.Equal("a=1;", R("{% for k, v in {'a': 1} | items %}{{ k }}={{ v }};{% endfor %}"));
        Assert.Equal("ab", R("{% for c in 'ab' %}{{ c }}{% endfor %}"));
        Assert.Equal("x-y-x", R("{% for i in range(3) %}{{ loop.cycle('x', 'y') }}{% if not loop.last %}-{% endif %}{% endfor %}"));
    }

    [Fact]
    public void Set_in_a_loop_stays_in_the_loop_but_a_namespace_carries_out()
    {
        Assert.Equal("1", R("{% set x = 1 %}{% for i in [1,2] %}{% set x = i %}{% endfor %}{{ x }}"));
        Assert.Equal("4", R("{% set ns = namespace(x=1) %}{% for i in [1,2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"));
        Assert.Equal("[a1b]", R("{% set x %}a{{ 1 }}b{% endset %}[{{ x }}]"));
        Assert.Equal("2", R("{% set messages = messages + messages %}{{ messages | length }}"));
    }

    [Fact]
    public void Literals_print_as_python_does()
    {
        Assert.Equal("it's\"q\"é\t", R("""{{ 'it\'s' ~ "\"q\"" ~ '\u00e9' ~ '\t' }}"""));
        Assert.Equal("7 3 1 -4 3.5 1024 2.5 -2 0.1", R("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -7 // 2 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 + 1 }} {{ -2 }} {{ 0.1 }}"));
        Assert.Equal("[1, 'a', None, True] {'a': [1, 2.0]} None ", R("{{ [1, 'a', none, true] }} {{ {'a': [1, 2.0]} }} {{ none }} {{ not_defined }}"));
        Assert.Equal("ab", R("{{ 'a' 'b' }}"));
        Assert.Equal("[\"it's\"]", R("{{ [\"it's\"] }}"));
    }

    [Fact]
    public void Operators_and_tests()
    {
        Assert.Equal("True False True False True True True True True True",
            R("{{ 'b' in 'abc' }} {{ 2 not in [1, 2] }} {{ 1 < 2 < 3 }} {{ x is defined }} {{ none is none }} {{ 'a' is string }} "
              + "{{ {} is mapping }} {{ 3 is number }} {{ true is boolean }} {{ 4 is divisibleby 2 }}"));
        Assert.Equal("n d b True False", R("{{ 'y' if 1 > 2 else 'n' }} {{ '' or 'd' }} {{ 'a' and 'b' }} {{ [] is iterable }} {{ 1 is not number }}"));
        Assert.Equal("True True False", R("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' == ['a'] }}"));
        Assert.Equal("", R("{{ 'x' if false }}"));
    }

    [Fact]
    public void Member_access_and_slicing()
    {
        Assert.Equal("[2, 3, 4] [1, 2, 3] [4, 3, 2, 1] el 3 5 1 user hi",
            R("{{ [1,2,3,4][1:] }} {{ [1,2,3,4][:-1] }} {{ [1,2,3,4][::-1] }} {{ 'hello'[1:3] }} {{ [1,2,3][-1] }} "
              + "{{ {'a': {'b': 5}}.a.b }} {{ {'a': 1}['a'] }} {{ messages[0].role }} {{ messages[0]['content'] }}"));
        Assert.Equal("True", R("{{ messages[3] is undefined }}"));
    }

    [Fact]
    public void Filters()
    {
        Assert.Equal("x|2|AB|ab|d|3|4|a, b|bXb|['a', 'b']|42|8|[['k', 1]]|Hello World|User|5",
            R("{{ '  x  ' | trim }}|{{ [1,2] | length }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ missing | default('d') }}|"
              + "{{ [3,4] | first }}|{{ [3,4] | last }}|{{ ['a','b'] | join(', ') }}|{{ 'aXa' | replace('a', 'b') }}|"
              + "{{ 'ab' | list }}|{{ 42 | string }}|{{ '7' | int + 1 }}|{{ {'k': 1} | items | list }}|"
              + "{{ 'hello world' | title }}|{{ messages[0].role | capitalize }}|{{ -5 | abs }}"));
        Assert.Equal("""{"a": [1, 2.5, null, true], "b": "é\"\n"}""", R("""{{ {'a': [1, 2.5, none, true], 'b': 'é"\n'} | tojson }}"""));
        Assert.Equal("[2, 4] ac x+y 1 ['u']",
            R("{{ [1,2,3,4] | select('even') | list }} {{ ['a','b','c'] | reject('equalto', 'b') | join }} "
              + "{{ [{'n': 'x'}, {'n': 'y'}] | map(attribute='n') | join('+') }} "
              + "{{ [{'r': 'u'}, {'r': 's'}] | selectattr('r', 'equalto', 's') | list | length }} "
              + "{{ [{'r': 'u'}, {'r': 's'}] | rejectattr('r', 'equalto', 's') | map(attribute='r') | list }}"));
        Assert.Equal("code_interpreter gone: a, b", R("code_interpreter gone: {{ ['a', 'code_interpreter', 'b'] | reject('equalto', 'code_interpreter') | join(', ') }}"));
    }

    [Fact]
    public void String_and_dict_methods()
    {
        Assert.Equal("a|axx|xxa|True|True|['a', 'b', 'c']|['a', 'b']|Hello World|1|none|['a', 'b']|['x=1']",
            R("{{ '  a  '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'xxaxx'.rstrip('x') }}|{{ 'hello'.startswith('he') }}|"
              + "{{ 'hello'.endswith(('x', 'lo')) }}|{{ 'a,b,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'hello world'.title() }}|"
              + "{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('b', 'none') }}|{{ {'a': 1, 'b': 2}.keys() | list }}|"
              + "{{ ['x=1 y'.split(' ')[0]] }}"));
    }

    [Fact]
    public void Macros_take_positional_named_and_default_arguments()
    {
        Assert.Equal("Hi Bob! Hi Al?", R("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }}"));
    }

    [Fact]
    public void Strftime_now_reads_the_injected_clock()
    {
        var clock = new FixedClock(new DateTimeOffset(2024, 7, 26, 14, 5, 9, TimeSpan.Zero));

        Assert.Equal("26 Jul 2024|Friday July 26, 14:05:09|07/26/24",
            R("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d, %H:%M:%S') }}|{{ strftime_now('%m/%d/%y') }}", time: clock));
    }

    [Fact]
    public void Variables_accept_clr_values()
    {
        var vars = new Dictionary<string, object?>
        {
            ["n"] = 3,
            ["f"] = 0.5f,
            ["items"] = new[] { "a", "b" },
            ["map"] = new Dictionary<string, object?> { ["k"] = new ChatMessage("user", "c") },
        };

        Assert.Equal("3 0.5 a,b c", R("{{ n }} {{ f }} {{ items | join(',') }} {{ map.k.content }}", vars));
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;

        public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
    }
}
