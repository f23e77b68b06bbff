using System.Globalization;

namespace Strata.Models.Chat;

/// <summary>What kind of failure a <see cref="ChatTemplateException"/> reports.</summary>
public enum ChatTemplateErrorKind
{
    /// <summary>The template does not parse: bad syntax, an unknown tag, filter or test.</summary>
    Syntax,

    /// <summary>The template failed while rendering: a type error, an undefined callable, a bad argument.</summary>
    Render,

    /// <summary>
    /// The template itself refused the conversation with <c>raise_exception(...)</c> (for example roles that do not
    /// alternate); <see cref="ChatTemplateException.Problem"/> is the template's own message, fit to show a client.
    /// </summary>
    Rejected,

    /// <summary>The render ran past a bound: output size, loop steps or call depth.</summary>
    LimitExceeded,

    /// <summary>The model folder has no usable chat template (missing, malformed or ambiguous configuration).</summary>
    Configuration,
}

/// <summary>
/// A chat template failed to load, parse or render. The message names the template (its file where it came from one)
/// and, where there is one, the line and column in the template source.
/// </summary>
public sealed class ChatTemplateException : Exception
{
    /// <summary>Creates the exception; the source, line and column are folded into the message.</summary>
    public ChatTemplateException(
        ChatTemplateErrorKind kind, string problem, string? source = null, int? line = null, int? column = null,
        Exception? inner = null)
        : base(Format(problem, source, line, column), inner)
    {
        Kind = kind;
        Problem = problem;
        Origin = source;
        Line = line;
        Column = column;
    }

    /// <summary>What kind of failure this is.</summary>
    public ChatTemplateErrorKind Kind { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    /// <summary>Where the template came from (a file and field), or null for a template given as a string.</summary>
    public string? Origin { get; }

    /// <summary>1-based line in the template source, when the failure has a place.</summary>
    public int? Line { get; }

    /// <summary>1-based column in the template source, when the failure has a place.</summary>
    public int? Column { get; }

    private static string Format(string problem, string? source, int? line, int? column)
    {
        string where = source ?? "chat template";
        return line is int l
            ? string.Create(CultureInfo.InvariantCulture, $"{where}: line {l}, column {column ?? 1}: {problem}")
            : $"{where}: {problem}";
    }
}
