using System.CommandLine;
using System.Globalization;
using Strata.Models.Checkpoints;
using Strata.Models.Packaging;

namespace Strata.Cli;

/// <summary><c>strata import SRC --out PKG</c>: a Hugging Face folder to a verified Strata model package.</summary>
internal static class ImportCommand
{
    public static Command Create(CliOutput output)
    {
        var source = new Argument<string>("source") { Description = "Hugging Face model folder (config.json, safetensors, tokenizer files)" };
        var outDir = new Option<string>("--out") { Description = "Package folder to create", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "Store weights as fp32, fp16 or bf16 (default: as the source)" };
        var name = new Option<string?>("--name") { Description = "Model name in the manifest (default: the source folder's name)" };
        var force = new Option<bool>("--force") { Description = "Replace an existing package at --out" };

        var cmd = new Command("import", "Import a Hugging Face checkpoint as a Strata model package (per-layer files, checksummed manifest).")
        {
            source, outDir, dtype, name, force,
        };
        cmd.SetAction(parse =>
        {
            TensorDType? dt = parse.GetValue(dtype) is string d
                ? TensorDTypes.TryParseUser(d, out var parsed) ? parsed : throw new CliUsageException($"--dtype '{d}' is not valid: use fp32, fp16 or bf16")
                : null;
            var options = new ImportOptions { DType = dt, Name = parse.GetValue(name), Overwrite = parse.GetValue(force) };
            var bar = new ProgressBar(output.Err, "import", !Console.IsErrorRedirected);
            var package = ModelImporter.Import(parse.GetValue(source)!, parse.GetValue(outDir)!, options,
                new Progress(p => bar.Report(p.Fraction, p.CurrentTensor)));
            bar.Report(1);
            var m = package.Manifest;
            output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"imported {m.Name} to {parse.GetValue(outDir)}: {m.Config.NumLayers} layers, {m.DType.UserName()}, {m.WeightFiles.Count()} weight files, {m.ParameterCount / 1e6:F2}M parameters"));
            return 0;
        });
        return cmd;
    }

    private sealed class Progress(Action<ImportProgress> report) : IProgress<ImportProgress>
    {
        public void Report(ImportProgress value) => report(value);
    }
}
