namespace Strata.Models;

/// <summary>
/// A model file (checkpoint, config, tokenizer or package) is malformed or unsupported.
/// The message always names the file and, where there is one, the tensor or field at fault.
/// This is a user error: command-line tools print the message without a stack trace.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the exception; <paramref name="file"/> and <paramref name="item"/> are folded into the message.</summary>
    public ModelFormatException(string file, string? item, string problem, Exception? inner = null)
        : base(Format(file, item, problem), inner)
    {
        File = file;
        Item = item;
        Problem = problem;
    }

    /// <summary>The file at fault (a path as the user gave it, or a path inside the model folder).</summary>
    public string File { get; }

    /// <summary>The tensor, JSON field or manifest entry at fault, if any.</summary>
    public string? Item { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    private static string Format(string file, string? item, string problem) =>
        item is null ? $"{file}: {problem}" : $"{file}: {item}: {problem}";
}
