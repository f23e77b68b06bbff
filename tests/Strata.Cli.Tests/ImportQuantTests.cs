namespace Strata.Cli.Tests;

/// <summary><c>strata import --quant</c>, <c>--eval</c> and <c>strata eval</c> on stories260K.</summary>
public sealed class ImportQuantTests
{
    [Fact]
    public void Int4_import_with_eval_reports_accuracy_and_the_package_generates()
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        var r = Cli.Run("import", model, "--out", tmp["q4"], "--quant", "int4", "--block", "64", "--keep-fp", "0", "--eval");
        Assert.True(r.ExitCode == 0, r.Err);
        Assert.Contains("int4 projections (block 64, layers 0 float)", r.Out);
        Assert.Contains("greedy agreement:", r.Out);
        Assert.Contains("KL divergence:", r.Out);
        Assert.Contains("perplexity:", r.Out);
        Assert.Contains("int4 block 64", r.Out);

        var g = Cli.Run("generate", "--model", tmp["q4"], "--prompt", "Once upon a time", "--max-new-tokens", "8", "--json");
        Assert.True(g.ExitCode == 0, g.Err);
        Assert.Equal(8, g.Json()["generated_ids"]!.AsArray().Count);

        var e = Cli.Run("eval", tmp["q4"], "--against", model, "--steps", "8");
        Assert.True(e.ExitCode == 0, e.Err);
        Assert.Contains("/24 steps (teacher-forced)", e.Out);
    }

    [Fact]
    public void A_tampered_quantized_package_is_refused_in_one_line()
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("import", model, "--out", tmp["q8"], "--quant", "int8").ExitCode);
        string layer = Path.Combine(tmp["q8"], "layers", "layer-00003.safetensors");
        var bytes = File.ReadAllBytes(layer);
        bytes[^5] ^= 0x21; // inside the last tensor (down_proj's zero points)
        File.WriteAllBytes(layer, bytes);
        Cli.AssertUserError(Cli.Run("generate", "--model", tmp["q8"], "--prompt", "Once", "--max-new-tokens", "2"),
            "layer-00003.safetensors", "sha256 mismatch");
    }

    [Theory]
    [InlineData(new[] { "--quant", "int3" }, "--quant 'int3' is not valid")]
    [InlineData(new[] { "--quant", "int4", "--block", "48" }, "--block 48 is not valid")]
    [InlineData(new[] { "--block", "64" }, "need --quant")]
    [InlineData(new[] { "--eval" }, "--eval compares a quantized package")]
    [InlineData(new[] { "--quant", "int8", "--keep-fp", "1-x" }, "--keep-fp: '1-x'")]
    [InlineData(new[] { "--quant", "int8", "--keep-fp", "9" }, "layer 9")]
    public void Bad_quantization_flags_are_one_line_errors(string[] flags, string message)
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        Cli.AssertUserError(Cli.Run(["import", model, "--out", tmp["pkg"], .. flags]), message);
        Assert.False(Directory.Exists(tmp["pkg"]));
    }
}
