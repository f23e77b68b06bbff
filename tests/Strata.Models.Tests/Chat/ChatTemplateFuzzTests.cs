using Strata.Models.Chat;

namespace Strata.Models.Tests.Chat;

/// <summary>
/// Whatever text is given as a template, parsing and rendering either succeed or throw ChatTemplateException, never
/// anything else, and never the internal-error safety net (that would be a bug in the interpreter).
/// </summary>
public sealed class ChatTemplateFuzzTests
{
    private static readonly string[] Fragments =
    [
        "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", "{{-", "-}}", " ", "\n", "if ", "elif ", "else", "endif", "for ",
        " in ", "endfor", "set ", "macro ", "endmacro", "break", "x", "ns", "ns.a", "=", "'a'", "\"b\"", "'", "(", ")", "[",
        "]", "{", "}", ".", ",", ":", "|", "trim", "length", "tojson", "join", "items", "loop.index", "loop", "messages",
        "messages[0]", "['content']", "[1:]", "[::-1]", "1", "0", "-1", "2.5", "+", "-", "*", "/", "//", "%", "**", "~",
        "==", "<", "not ", " and ", " or ", " is ", "defined", "none", "true", "namespace(a=1)", "range(3)", "range(x)",
        "raise_exception('no')", ".strip()", ".split()", ".get('a')", "strftime_now('%d')", "\\", "\\n", "é", "😀",
    ];

    private static readonly ChatMessage[] Chat = [new("system", "s"), new("user", "u"), new("assistant", "a")];

    private static void RendersOrFailsCleanly(string template)
    {
        try
        {
            ChatTemplate.Parse(template).Render(Chat, new ChatTemplateOptions { MaxOutputLength = 20_000, BosToken = "<s>" });
        }
        catch (ChatTemplateException ex)
        {
            Assert.False(ex.Problem.StartsWith("internal error", StringComparison.Ordinal), $"{ex.Message}\nTemplate: {template}");
        }
    }

    [Fact]
    public void Random_fragment_soup_never_escapes_as_another_exception()
    {
        var random = new Random(20240726);
        for (int i = 0; i < 3_000; i++)
        {
            int count = random.Next(1, 30);
            string template = string.Concat(Enumerable.Range(0, count).Select(_ => Fragments[random.Next(Fragments.Length)]));
            RendersOrFailsCleanly(template);
        }
    }

    [Fact]
    public void Mutated_real_templates_never_escape_as_another_exception()
    {
        string[] sources = [RealTemplates.Llama2Chat, RealTemplates.Llama31Instruct, RealTemplates.Qwen25Instruct, RealTemplates.MistralInstructV01];
        var random = new Random(7);
        for (int i = 0; i < 1_500; i++)
        {
            var chars = sources[random.Next(sources.Length)].ToList();
            for (int edits = random.Next(1, 6); edits > 0 && chars.Count > 0; edits--)
            {
                int at = random.Next(chars.Count);
                switch (random.Next(3))
                {
                    case 0: chars.RemoveAt(at); break;
                    case 1: chars.Insert(at, "{}%#-'\"()[]|.,=+ \n"[random.Next(18)]); break;
                    default: chars[at] = (char)random.Next(32, 127); break;
                }
            }
            RendersOrFailsCleanly(new string(chars.ToArray()));
        }
    }

    [Fact]
    public void Random_bytes_never_escape_as_another_exception()
    {
        var random = new Random(42);
        for (int i = 0; i < 1_000; i++)
        {
            var chars = new char[random.Next(0, 60)];
            for (int j = 0; j < chars.Length; j++) chars[j] = (char)random.Next(0, 0x3000);
            RendersOrFailsCleanly(new string(chars));
        }
    }
}
