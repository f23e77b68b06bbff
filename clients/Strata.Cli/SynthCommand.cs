using System.CommandLine;
using System.Globalization;
using Strata.Models.Checkpoints;
using Strata.Models.Synthetic;

namespace Strata.Cli;

/// <summary><c>strata synth --out DIR</c>: a deterministic random-weight Hugging Face checkpoint.</summary>
internal static class SynthCommand
{
    public static Command Create(CliOutput output)
    {
        var outDir = new Option<string>("--out") { Description = "Folder to write (must not exist or be empty)", Required = true };
        var preset = new Option<string>("--preset") { Description = $"Start from a preset shape: {string.Join(", ", SyntheticOptions.PresetNames)}", DefaultValueFactory = _ => "tiny" };
        var layers = new Option<int?>("--layers") { Description = "Decoder layers" };
        var hidden = new Option<int?>("--hidden") { Description = "Hidden size" };
        var heads = new Option<int?>("--heads") { Description = "Attention (query) heads" };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads (grouped-query attention when fewer than --heads)" };
        var headDim = new Option<int?>("--head-dim") { Description = "Explicit head size (default hidden / heads)" };
        var intermediate = new Option<int?>("--intermediate") { Description = "MLP inner size" };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary size" };
        var maxPositions = new Option<int?>("--max-positions") { Description = "max_position_embeddings" };
        var dtype = new Option<string?>("--dtype") { Description = "fp32, fp16 or bf16" };
        var seed = new Option<ulong?>("--seed") { Description = "Weight seed (same seed, same bytes)" };
        var tied = new Option<bool?>("--tied") { Description = "Tie the LM head to the embedding" };
        var bias = new Option<bool?>("--attention-bias") { Description = "q/k/v biases (as Qwen2)" };
        var shards = new Option<int?>("--shards") { Description = "Number of safetensors shards (1 = model.safetensors)" };
        var arch = new Option<string?>("--architecture") { Description = "LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM" };

        var cmd = new Command("synth", "Write a deterministic random-weight Hugging Face Llama checkpoint (with a tokenizer) for tests and benchmarks.")
        {
            outDir, preset, layers, hidden, heads, kvHeads, headDim, intermediate, vocab, maxPositions, dtype, seed, tied, bias, shards, arch,
        };
        cmd.SetAction(parse =>
        {
            string presetName = parse.GetValue(preset)!;
            if (!SyntheticOptions.PresetNames.Contains(presetName.ToLowerInvariant()))
                throw new CliUsageException($"--preset '{presetName}' is not known; use one of {string.Join(", ", SyntheticOptions.PresetNames)}");
            var o = SyntheticOptions.Preset(presetName);
            TensorDType? dt = parse.GetValue(dtype) is string d
                ? TensorDTypes.TryParseUser(d, out var parsed) ? parsed : throw new CliUsageException($"--dtype '{d}' is not valid: use fp32, fp16 or bf16")
                : null;
            o = o with
            {
                Layers = parse.GetValue(layers) ?? o.Layers,
                Hidden = parse.GetValue(hidden) ?? o.Hidden,
                Heads = parse.GetValue(heads) ?? o.Heads,
                KvHeads = parse.GetValue(kvHeads) ?? parse.GetValue(heads) ?? o.KvHeads,
                HeadDim = parse.GetValue(headDim) ?? o.HeadDim,
                Intermediate = parse.GetValue(intermediate) ?? o.Intermediate,
                Vocab = parse.GetValue(vocab) ?? o.Vocab,
                MaxPositions = parse.GetValue(maxPositions) ?? o.MaxPositions,
                DType = dt ?? o.DType,
                Seed = parse.GetValue(seed) ?? o.Seed,
                Tied = parse.GetValue(tied) ?? o.Tied,
                AttentionBias = parse.GetValue(bias) ?? o.AttentionBias,
                Shards = parse.GetValue(shards) ?? o.Shards,
                Architecture = parse.GetValue(arch) ?? o.Architecture,
            };
            o.Validate();
            string dir = parse.GetValue(outDir)!;
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new CliUsageException($"--out {dir} exists and is not empty");

            var bar = new ProgressBar(output.Err, "synth", !Console.IsErrorRedirected);
            var config = SyntheticCheckpoint.Write(o, dir, new Progress(bar));
            bar.Report(1);
            output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {dir}: {config.Architecture}, {config.NumLayers} layers, hidden {config.HiddenSize}, " +
                $"{config.NumHeads}/{config.NumKvHeads} heads, vocab {config.VocabSize}, {o.DType.UserName()}, " +
                $"{SyntheticCheckpoint.ParameterCount(o) / 1e6:F1}M parameters, seed {o.Seed}"));
            return 0;
        });
        return cmd;
    }

    private sealed class Progress(ProgressBar bar) : IProgress<double>
    {
        public void Report(double value) => bar.Report(value);
    }
}
