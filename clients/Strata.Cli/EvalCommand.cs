using System.CommandLine;
using Strata.Engine.Evaluation;
using Strata.Engine.Runtime;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Cli;

/// <summary>
/// <c>strata eval PKG --against SRC</c> (and <c>strata import --quant ... --eval</c>): how closely a quantized package
/// follows the unquantized model, greedy from fixed prompts and scored on a fixed text (<see cref="AccuracyReport"/>).
/// </summary>
internal static class EvalCommand
{
    /// <summary>Greedy steps per prompt.</summary>
    public const int DefaultSteps = 64;

    /// <summary>Prompts the greedy comparison starts from.</summary>
    public static readonly IReadOnlyList<string> Prompts = ["Once upon a time", "The little dog was sad because", "Tom and his mom went to the"];

    /// <summary>The fixed text perplexity and KL are measured on: simple English that small story models know.</summary>
    public const string Text = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
        + "One day, she saw a big dog. The dog was very friendly and wanted to play with Lily. They played all day and had lots of fun. "
        + "At the end of the day, Lily went home and told her mom about the dog. Her mom smiled and said, \"You are a good friend.\" "
        + "The next morning, Lily and the dog went to the park again. They ran, jumped and laughed in the warm sun.";

    public static Command Create(CliOutput output)
    {
        var package = new Argument<string>("package") { Description = "The quantized package (or any model folder) to evaluate" };
        var against = new Option<string>("--against") { Description = "The unquantized model to compare with (Hugging Face folder or package)", Required = true };
        var text = new Option<string?>("--text") { Description = "A UTF-8 text file to measure perplexity and KL on (default: a built-in short story)" };
        var steps = new Option<int>("--steps") { Description = "Greedy steps per prompt", DefaultValueFactory = _ => DefaultSteps };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime threads (0 = one per core)", DefaultValueFactory = _ => 0 };
        var cmd = new Command("eval", "Compare a quantized package with the unquantized model: greedy agreement, logit error, KL divergence, perplexity.")
        {
            package, against, text, steps, threads,
        };
        cmd.SetAction(parse =>
        {
            Run(output, parse.GetValue(package)!, parse.GetValue(against)!, parse.GetValue(text), parse.GetValue(steps), parse.GetValue(threads));
            return 0;
        });
        return cmd;
    }

    /// <summary>Measures and prints the report.</summary>
    public static AccuracyReport Run(CliOutput output, string candidatePath, string referencePath, string? textFile, int steps, int threads)
    {
        if (steps is < 1 or > 4096) throw new CliUsageException($"--steps must be between 1 and 4096, got {steps}");
        using var candidate = ModelLoader.Open(candidatePath);
        using var reference = ModelLoader.Open(referencePath);
        var c = candidate.Config;
        var r = reference.Config;
        if (c.NumLayers != r.NumLayers || c.HiddenSize != r.HiddenSize || c.VocabSize != r.VocabSize || c.IntermediateSize != r.IntermediateSize)
            throw new CliUsageException($"{candidatePath} and {referencePath} are not the same model shape (layers, hidden, intermediate or vocab differ)");
        var tokenizer = TokenizerLoader.Load(candidate.TokenizerDirectory);
        var prompts = Prompts.Select(p => tokenizer.Encode(p)).ToList();
        int[] tokens = tokenizer.Encode(textFile is null ? Text : File.ReadAllText(textFile));
        int limit = c.MaxPositionEmbeddings;
        if (prompts.Max(p => p.Length) + steps + 1 > limit)
            throw new CliUsageException($"--steps {steps} runs past the model's {limit} positions");
        tokens = tokens.Take(limit).ToArray();
        if (tokens.Length < 2) throw new CliUsageException($"{textFile}: the text needs at least one token to score");
        var options = new EngineOptions
        {
            IntraOpThreads = threads,
            MaxContext = Math.Min(limit, Math.Max(tokens.Length, prompts.Max(p => p.Length) + steps + 1)),
        };
        using var refPipeline = LocalPipeline.Load(r, reference.Tensors, 1, options);
        using var candPipeline = LocalPipeline.Load(c, candidate.Tensors, 1, options);
        var report = AccuracyReport.Measure(refPipeline, candPipeline, prompts, steps, tokens);
        output.Out.WriteLine($"accuracy of {candidate.Description}");
        output.Out.WriteLine($"  against {reference.Description}");
        output.Out.WriteLine($"  {Prompts.Count} prompts x {steps} greedy steps; text of {report.TextTokens + 1} tokens");
        foreach (string line in report.ToText().Split('\n')) output.Out.WriteLine("  " + line);
        return report;
    }
}
