using System.CommandLine;
using Orleans.Runtime.Messaging;
using Strata.Client;
using Strata.Contracts;
using Strata.Engine.Runtime;
using Strata.Models;

namespace Strata.Cli;

/// <summary>The <c>strata</c> command line: parses, dispatches, and turns user errors into one-line messages.</summary>
public static class CliApp
{
    /// <summary>Exit code of a user error (bad input, bad flags, malformed model).</summary>
    public const int UserError = 2;

    /// <summary>Runs the command line and returns the process exit code.</summary>
    /// <param name="args">The arguments.</param>
    /// <param name="stdout">Results (default: the console).</param>
    /// <param name="stderr">Progress and diagnostics (default: the console).</param>
    /// <param name="stdin">Input of <c>chat</c> (default: the console).</param>
    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null, TextReader? stdin = null)
    {
        var output = new CliOutput(stdout ?? Console.Out, stderr ?? Console.Error)
        {
            In = stdin ?? Console.In,
            InteractiveInput = stdin is null && !Console.IsInputRedirected,
        };
        var root = new RootCommand("Strata: serve large language models on an Orleans cluster.")
        {
            SynthCommand.Create(output),
            ImportCommand.Create(output),
            ExportGgufCommand.Create(output),
            EvalCommand.Create(output),
            GenerateCommand.Create(output),
            ChatCommand.Create(output),
            DemoCommand.Create(output),
            ClusterCommands.Create(output),
            GatewayCommand.Create(output),
            CertsCommand.Create(output),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0 && parse.Action is not { ClearsParseErrors: true })
        {
            // Bad flags are user errors like any other: one line each, exit code 2, and where to read more.
            foreach (var error in parse.Errors) output.Err.WriteLine($"error: {error.Message}");
            output.Err.WriteLine($"see: {CommandPath(parse)} --help");
            return UserError;
        }
        try
        {
            // Ctrl+C cancels the command's token (a cluster stream stops and its session frees the KV; the demo stops
            // its silos); System.CommandLine only listens for it when given a termination timeout.
            return await parse.InvokeAsync(new InvocationConfiguration
            {
                Output = output.Out,
                Error = output.Err,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = TimeSpan.FromSeconds(15),
            });
        }
        catch (Exception e) when (IsUserError(e))
        {
            output.Err.WriteLine($"error: {OneLine(e)}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            output.Err.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>"strata cluster status": the command a parse ended in, as typed.</summary>
    private static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as System.CommandLine.Parsing.CommandResult) names.Add(r.Command.Name);
        names[^1] = "strata"; // the root's name is the executable's (a test host, in tests)
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>The message as one line: Orleans puts inner exceptions and their stack traces into its messages.</summary>
    internal static string OneLine(Exception e)
    {
        if (e is not (OrleansException or TimeoutException)) return e.Message;
        string first = e.Message.Split('\n', 2)[0].Trim();
        int at = first.IndexOf("   at ", StringComparison.Ordinal);
        if (at > 0) first = first[..at].Trim();
        return e is OrleansMessageRejectionException or SiloUnavailableException or ConnectionFailedException
            ? $"a silo did not answer ({first}); the cluster may still be settling after a silo was lost: try again in a few seconds"
            : first;
    }

    // Cluster failures a user can act on: typed errors from the grains, no cluster at the address, a silo lost
    // mid-call, a call or a deployment that timed out.
    private static bool IsUserError(Exception e) => e is ModelFormatException or ContextOverflowException
        or ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException
        or UnauthorizedAccessException or CliUsageException or IOException
        or StrataException or ClusterUnreachableException or TimeoutException or Gateway.GatewayConfigException or InvalidDataException
        or SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException;
}

/// <summary>Where a command writes: results to <see cref="Out"/>, progress and diagnostics to <see cref="Err"/>;
/// <c>chat</c> reads <see cref="In"/>.</summary>
public sealed record CliOutput(TextWriter Out, TextWriter Err)
{
    /// <summary>Standard input.</summary>
    public TextReader In { get; init; } = TextReader.Null;

    /// <summary>Whether <see cref="In"/> is a terminal (a person typing), so prompts are worth showing.</summary>
    public bool InteractiveInput { get; init; }
}

/// <summary>A flag combination that makes no sense; the message says which and why.</summary>
public sealed class CliUsageException(string message) : Exception(message);
