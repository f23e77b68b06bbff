using System.CommandLine;

namespace Strata.Cli;

/// <summary>
/// <c>strata chat --model NAME</c>: a conversation with a deployed model. Each line read from stdin is one turn of
/// the same session, appended as typed (no chat template); the reply streams to stdout, one line per turn. Ends at
/// end of input or a line <c>/exit</c>; blank lines are skipped. At the end the session frees its KV and keeps its
/// history, so <c>--session ID</c> continues it later.
/// </summary>
internal static class ChatCommand
{
    /// <summary>The line that ends the conversation.</summary>
    public const string ExitLine = "/exit";

    public static Command Create(CliOutput output)
    {
        var model = new Option<string>("--model") { Description = "A deployed model's name", Required = true };
        var session = new Option<string?>("--session") { Description = "Session (conversation) id; reuse one to continue it (default: a new one)" };
        var sampling = new SamplingOptions();
        var flags = new ClusterFlags();
        var cmd = new Command("chat", $"Talk to a deployed model: each stdin line is a turn of one session; {ExitLine} or end of input ends.") { model, session };
        sampling.AddTo(cmd);
        flags.AddTo(cmd);
        cmd.SetAction(async (parse, ct) =>
        {
            string name = parse.GetValue(model)!;
            var request = sampling.BuildRequest(parse, name, "");
            string id = parse.GetValue(session) ?? ClusterTurn.NewSessionId();
            var target = flags.Get(parse);
            await using var connection = await ClusterConnection.ConnectAsync(target, ct);
            output.Err.WriteLine($"chat with {name} on {target}, session {id}, seed {request.Seed}; {ExitLine} or end of input ends");

            bool first = true;
            try
            {
                while (true)
                {
                    if (output.InteractiveInput) output.Err.Write("> ");
                    // Off the command's flow so Ctrl+C at the prompt ends the chat at once; a console read ignores tokens.
                    string? line = await Task.Run(output.In.ReadLine, ct).WaitAsync(ct);
                    if (line is null || line.Trim() == ExitLine) break;
                    if (line.Trim().Length == 0) continue;
                    // The seed applies to the first turn; later turns continue the session's random stream.
                    var turn = await ClusterTurn.StreamAsync(connection.Client, id,
                        first ? request with { Prompt = line } : request with { Prompt = line, Seed = null },
                        text =>
                        {
                            output.Out.Write(text);
                            output.Out.Flush();
                        }, ct);
                    first = false;
                    output.Out.WriteLine();
                    output.Out.Flush();
                    output.Err.WriteLine($"[{turn.Summary()}]");
                }
            }
            finally
            {
                // The conversation keeps its history (continue it with --session); its KV slots go back to the pool.
                if (!first) await ClusterTurn.TryReleaseAsync(connection.Client, id);
            }
            return 0;
        });
        return cmd;
    }
}
