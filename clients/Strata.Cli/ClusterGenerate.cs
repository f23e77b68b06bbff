using System.CommandLine;

namespace Strata.Cli;

/// <summary><c>strata generate --cluster</c>: one turn of a session on a running cluster, printed as the local
/// generate prints it.</summary>
internal static class ClusterGenerate
{
    public static async Task<int> RunAsync(CliOutput output, ClusterTarget target, string model, string prompt, string? sessionId,
        SamplingOptions sampling, ParseResult parse, bool json, CancellationToken ct)
    {
        var request = sampling.BuildRequest(parse, model, prompt);
        string session = sessionId ?? ClusterTurn.NewSessionId();
        await using var connection = await ClusterConnection.ConnectAsync(target, ct);

        if (!json) output.Out.Write(prompt);
        var turn = await ClusterTurn.StreamAsync(connection.Client, session, request, text =>
        {
            if (json) return;
            output.Out.Write(text);
            output.Out.Flush();
        }, ct);
        // Nobody can continue a session whose id was never shown: free its KV now. A named one keeps it for the next turn.
        if (sessionId is null) await ClusterTurn.ReleaseAsync(connection.Client, session);

        if (json)
        {
            GenerateCommand.WriteJson(output.Out, turn.PromptIds, turn.GeneratedIds, turn.Text, turn.StopReason);
        }
        else
        {
            output.Out.WriteLine();
            output.Err.WriteLine($"[model {model} on {target}; session {session}; {turn.Summary()}; seed {request.Seed}]");
        }
        return 0;
    }
}
