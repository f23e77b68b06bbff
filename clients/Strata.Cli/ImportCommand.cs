using System.CommandLine;
using System.Globalization;
using Strata.Models.Checkpoints;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Packaging;
using Strata.Models.Quantization;

namespace Strata.Cli;

/// <summary><c>strata import SRC --out PKG</c>: a Hugging Face folder or a GGUF file to a verified Strata model package.</summary>
internal static class ImportCommand
{
    public static Command Create(CliOutput output)
    {
        var source = new Argument<string>("source") { Description = "Hugging Face model folder (config.json, safetensors, tokenizer files) or GGUF file (llama.cpp, Ollama)" };
        var outDir = new Option<string>("--out") { Description = "Package folder to create", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "Store weights as fp32, fp16 or bf16 (default: as the source)" };
        var name = new Option<string?>("--name") { Description = "Model name in the manifest (default: the source folder's name, or the GGUF file's without .gguf)" };
        var force = new Option<bool>("--force") { Description = "Replace an existing package at --out" };
        var quant = new Option<string?>("--quant") { Description = "Quantize the layers' projection weights: int8 or int4 (block-wise with zero points, run by MatMulNBits); a quantized GGUF file keeps its own scheme" };
        var block = new Option<int?>("--block") { Description = $"Values per quantization block along the input dimension: 32, 64 or 128 (default {QuantizationScheme.DefaultBlockSize})" };
        var keepFp = new Option<string?>("--keep-fp") { Description = "Layers to keep in float with --quant, e.g. 0,4-5" };
        var eval = new Option<bool>("--eval") { Description = "With --quant, report accuracy against the source afterwards (as strata eval PKG --against SRC)" };
        var quantHead = new Option<bool>("--quant-head") { Description = "With --quant, quantize the LM head too (the embedding always stays float)" };

        var cmd = new Command("import", "Import a Hugging Face checkpoint or a GGUF file as a Strata model package (per-layer files, checksummed manifest).")
        {
            source, outDir, dtype, name, force, quant, block, keepFp, quantHead, eval,
        };
        cmd.SetAction(parse =>
        {
            TensorDType? dt = parse.GetValue(dtype) is string d
                ? TensorDTypes.TryParseUser(d, out var parsed) ? parsed : throw new CliUsageException($"--dtype '{d}' is not valid: use fp32, fp16 or bf16")
                : null;
            if (parse.GetValue(eval) && parse.GetValue(quant) is null)
                throw new CliUsageException("--eval compares a quantized package with its source: give --quant int8 or int4");
            if (parse.GetValue(eval) && GgufCheckpoint.IsGgufFile(parse.GetValue(source)!))
                throw new CliUsageException("--eval compares with a Hugging Face folder or package; for a GGUF file import it once without --quant and run strata eval PKG --against that package");
            var scheme = ParseQuantization(parse.GetValue(quant), parse.GetValue(block), parse.GetValue(keepFp), parse.GetValue(quantHead));
            var options = new ImportOptions { DType = dt, Name = parse.GetValue(name), Overwrite = parse.GetValue(force), Quantization = scheme };
            var bar = new ProgressBar(output.Err, "import", !Console.IsErrorRedirected);
            var package = ModelImporter.Import(parse.GetValue(source)!, parse.GetValue(outDir)!, options,
                new Progress(p => bar.Report(p.Fraction, p.CurrentTensor)));
            bar.Report(1);
            var m = package.Manifest;
            output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"imported {m.Name} to {parse.GetValue(outDir)}: {m.Config.NumLayers} layers, {m.DType.UserName()}{Describe(m.Quant)}, {m.WeightFiles.Count()} weight files, {m.ParameterCount / 1e6:F2}M parameters, {m.WeightFiles.Sum(f => f.Bytes) / 1e6:F2} MB of weights"));
            if (parse.GetValue(eval))
                EvalCommand.Run(output, parse.GetValue(outDir)!, parse.GetValue(source)!, null, EvalCommand.DefaultSteps, 0);
            return 0;
        });
        return cmd;
    }

    private static QuantizationScheme? ParseQuantization(string? quant, int? block, string? keepFp, bool head)
    {
        if (quant is null)
        {
            if (block is not null || keepFp is not null || head)
                throw new CliUsageException("--block, --keep-fp and --quant-head need --quant int8 or int4");
            return null;
        }
        int bits = QuantizationScheme.ParseBits(quant) ?? throw new CliUsageException($"--quant '{quant}' is not valid: use int8 or int4");
        int size = block ?? QuantizationScheme.DefaultBlockSize;
        if (size is not (32 or 64 or 128)) throw new CliUsageException($"--block {size} is not valid: use 32, 64 or 128");
        IReadOnlyList<int> layers;
        try
        {
            layers = keepFp is null ? [] : QuantizationScheme.ParseLayers(keepFp);
        }
        catch (FormatException e)
        {
            throw new CliUsageException($"--keep-fp: {e.Message}");
        }
        return new QuantizationScheme(bits, size) { FloatLayers = layers, QuantizedHead = head };
    }

    private static string Describe(QuantizationScheme? q) => q is null ? ""
        : $" with {q.Name} projections (block {q.BlockSize}{(q.FloatLayers.Count > 0 ? $", layers {string.Join(",", q.FloatLayers)} float" : "")}{(q.QuantizedHead ? ", quantized head" : "")})";

    private sealed class Progress(Action<ImportProgress> report) : IProgress<ImportProgress>
    {
        public void Report(ImportProgress value) => report(value);
    }
}
