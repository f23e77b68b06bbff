using System.CommandLine;
using Strata.Engine.Runtime;
using Strata.Models;

namespace Strata.Cli;

/// <summary>The <c>strata</c> command line: parses, dispatches, and turns user errors into one-line messages.</summary>
public static class CliApp
{
    /// <summary>Exit code of a user error (bad input, bad flags, malformed model).</summary>
    public const int UserError = 2;

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var output = new CliOutput(stdout ?? Console.Out, stderr ?? Console.Error);
        var root = new RootCommand("Strata: serve large language models on an Orleans cluster.")
        {
            SynthCommand.Create(output),
            ImportCommand.Create(output),
            GenerateCommand.Create(output),
        };
        var parse = root.Parse(args);
        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = output.Out, Error = output.Err, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (IsUserError(e))
        {
            output.Err.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            output.Err.WriteLine("cancelled");
            return 130;
        }
    }

    private static bool IsUserError(Exception e) => e is ModelFormatException or ContextOverflowException
        or ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException
        or UnauthorizedAccessException or CliUsageException or IOException;
}

/// <summary>Where a command writes: results to <see cref="Out"/>, progress and diagnostics to <see cref="Err"/>.</summary>
public sealed record CliOutput(TextWriter Out, TextWriter Err);

/// <summary>A flag combination that makes no sense; the message says which and why.</summary>
public sealed class CliUsageException(string message) : Exception(message);
