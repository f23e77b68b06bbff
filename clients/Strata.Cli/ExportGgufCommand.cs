using System.CommandLine;
using System.Globalization;
using Strata.Models.Checkpoints.Gguf;

namespace Strata.Cli;

/// <summary><c>strata export-gguf MODEL --out FILE --type T</c>: a package or Hugging Face folder as a GGUF file for llama.cpp.</summary>
internal static class ExportGgufCommand
{
    public static Command Create(CliOutput output)
    {
        var model = new Argument<string>("model") { Description = "Strata package or Hugging Face model folder" };
        var outFile = new Option<string>("--out") { Description = "GGUF file to write", Required = true };
        var type = new Option<string>("--type") { Description = "Tensor type of the matrices: f32, f16, bf16, q8_0, q4_0 or q4_k (norms stay f32)", DefaultValueFactory = _ => "f16" };
        var force = new Option<bool>("--force") { Description = "Replace an existing file at --out" };
        var cmd = new Command("export-gguf", "Write a model as a GGUF file that llama.cpp and Ollama load (tokenizer and shape in its metadata).")
        {
            model, outFile, type, force,
        };
        cmd.SetAction(parse =>
        {
            string t = parse.GetValue(type)!;
            if (!GgufExporter.Types.TryGetValue(t, out var ggml))
                throw new CliUsageException($"--type '{t}' is not valid: use {string.Join(", ", GgufExporter.Types.Keys)}");
            string path = parse.GetValue(outFile)!;
            if (File.Exists(path) && !parse.GetValue(force))
                throw new CliUsageException($"{path}: exists; choose another file or give --force");
            // Written beside the destination and renamed, so a failed export leaves no partial file.
            string temp = path + ".exporting-" + Path.GetRandomFileName();
            try
            {
                GgufExporter.Export(parse.GetValue(model)!, temp, ggml);
                File.Move(temp, path, overwrite: true);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
            output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"exported {parse.GetValue(model)} to {path} ({ggml}, {new FileInfo(path).Length / 1e6:F2} MB)"));
            return 0;
        });
        return cmd;
    }
}
