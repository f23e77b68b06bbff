using System.Buffers.Binary;
using System.Text;

namespace Strata.Cli.Tests;

/// <summary>Every malformed model input is a user error: exit code 2, a message naming file and tensor or field,
/// no stack trace.</summary>
public sealed class MalformedInputTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _model;

    public MalformedInputTests()
    {
        _model = _tmp["model"];
        var r = Cli.Run("synth", "--out", _model, "--preset", "tiny", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.Err);
    }

    public void Dispose() => _tmp.Dispose();

    private string Weights => Path.Combine(_model, "model.safetensors");

    private Cli.Result Generate(string? model = null) =>
        Cli.Run("generate", "--model", model ?? _model, "--prompt", "hi", "--max-new-tokens", "2");

    private void EditHeader(string from, string to)
    {
        Assert.Equal(from.Length, to.Length);
        byte[] bytes = File.ReadAllBytes(Weights);
        int len = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, len);
        int at = header.IndexOf(from, StringComparison.Ordinal);
        Assert.True(at >= 0, $"'{from}' not in header");
        Encoding.UTF8.GetBytes(header.Remove(at, from.Length).Insert(at, to)).CopyTo(bytes, 8);
        File.WriteAllBytes(Weights, bytes);
    }

    private void EditConfig(string from, string to)
    {
        string path = Path.Combine(_model, "config.json");
        string text = File.ReadAllText(path);
        Assert.Contains(from, text);
        File.WriteAllText(path, text.Replace(from, to, StringComparison.Ordinal));
    }

    [Fact]
    public void Truncated_weights()
    {
        using (var f = File.OpenWrite(Weights)) f.SetLength(f.Length - 100);
        Cli.AssertUserError(Generate(), "model.safetensors", "truncated");
    }

    [Fact]
    public void Header_length_past_the_end()
    {
        byte[] bytes = File.ReadAllBytes(Weights);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 40);
        File.WriteAllBytes(Weights, bytes);
        Cli.AssertUserError(Generate(), "model.safetensors", "header length");
    }

    [Fact]
    public void Header_is_not_json()
    {
        byte[] bytes = File.ReadAllBytes(Weights);
        bytes[8] = (byte)'#';
        File.WriteAllBytes(Weights, bytes);
        Cli.AssertUserError(Generate(), "model.safetensors", "JSON");
    }

    [Fact]
    public void Unknown_dtype()
    {
        EditHeader("\"dtype\":\"F32\"", "\"dtype\":\"I64\"");
        Cli.AssertUserError(Generate(), "model.safetensors", "I64");
    }

    [Fact]
    public void Missing_tensor()
    {
        EditHeader("model.norm.weight", "model.norm.wEight");
        Cli.AssertUserError(Generate(), "model.norm.weight", "missing");
    }

    [Fact]
    public void Misshaped_tensor()
    {
        EditConfig("\"intermediate_size\": 128", "\"intermediate_size\": 96");
        Cli.AssertUserError(Generate(), "model.safetensors", "mlp.gate_proj.weight", "shape");
    }

    [Fact]
    public void Config_is_not_json()
    {
        File.WriteAllText(Path.Combine(_model, "config.json"), "{ \"hidden_size\": ");
        Cli.AssertUserError(Generate(), "config.json", "JSON");
    }

    [Fact]
    public void Unsupported_architecture()
    {
        EditConfig("LlamaForCausalLM", "GPT2LMHeadModel");
        Cli.AssertUserError(Generate(), "config.json", "architectures", "GPT2LMHeadModel");
    }

    [Fact]
    public void Tokenizer_is_not_json()
    {
        File.WriteAllText(Path.Combine(_model, "tokenizer.json"), "[");
        Cli.AssertUserError(Generate(), "tokenizer.json");
    }

    [Fact]
    public void Tampered_package_file_is_refused_by_name()
    {
        var import = Cli.Run("import", _model, "--out", _tmp["pkg"]);
        Assert.True(import.ExitCode == 0, import.Err);
        string layer = Path.Combine(_tmp["pkg"], "layers", "layer-00001.safetensors");
        byte[] bytes = File.ReadAllBytes(layer);
        bytes[^1] ^= 0x55;
        File.WriteAllBytes(layer, bytes);
        Cli.AssertUserError(Generate(_tmp["pkg"]), "layer-00001.safetensors", "sha256");
    }

    [Fact]
    public void Import_of_a_malformed_checkpoint_fails_and_leaves_no_package()
    {
        EditHeader("model.norm.weight", "model.norm.wEight");
        Cli.AssertUserError(Cli.Run("import", _model, "--out", _tmp["pkg"]), "model.norm.weight");
        Assert.False(Directory.Exists(_tmp["pkg"]) && Directory.EnumerateFileSystemEntries(_tmp["pkg"]).Any());
    }
}
