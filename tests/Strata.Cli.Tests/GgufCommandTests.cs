namespace Strata.Cli.Tests;

/// <summary><c>strata export-gguf</c> and <c>strata import FILE.gguf</c> on stories260K.</summary>
public sealed class GgufCommandTests
{
    [Fact]
    public void An_exported_F32_file_imports_and_generates_as_the_folder_does()
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        var x = Cli.Run("export-gguf", model, "--out", tmp["s.gguf"], "--type", "f32");
        Assert.True(x.ExitCode == 0, x.Err);
        Assert.Contains("(F32,", x.Out);
        var i = Cli.Run("import", tmp["s.gguf"], "--out", tmp["pkg"]);
        Assert.True(i.ExitCode == 0, i.Err);
        Assert.Contains("imported s to", i.Out);

        string[] args = ["--prompt", "Once upon a time", "--max-new-tokens", "24", "--json"];
        var fromGguf = Cli.Run(["generate", "--model", tmp["pkg"], .. args]);
        var fromFolder = Cli.Run(["generate", "--model", model, .. args]);
        Assert.True(fromGguf.ExitCode == 0, fromGguf.Err);
        Assert.Equal(fromFolder.Json()["prompt_ids"]!.ToJsonString(), fromGguf.Json()["prompt_ids"]!.ToJsonString());
        Assert.Equal(fromFolder.Json()["generated_ids"]!.ToJsonString(), fromGguf.Json()["generated_ids"]!.ToJsonString());
        Assert.Equal(fromFolder.Json()["text"]!.GetValue<string>(), fromGguf.Json()["text"]!.GetValue<string>());
    }

    [Fact]
    public void A_Q8_0_file_imports_as_int8_and_refuses_another_quant()
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("export-gguf", model, "--out", tmp["q8.gguf"], "--type", "q8_0").ExitCode);
        var i = Cli.Run("import", tmp["q8.gguf"], "--out", tmp["pkg"]);
        Assert.True(i.ExitCode == 0, i.Err);
        Assert.Contains("int8 projections (block 32)", i.Out);
        Cli.AssertUserError(Cli.Run("import", tmp["q8.gguf"], "--out", tmp["pkg4"], "--quant", "int4"),
            "q8.gguf", "already quantized (Q8_0");
        var g = Cli.Run("generate", "--model", tmp["pkg"], "--prompt", "Once upon a time", "--max-new-tokens", "8", "--json");
        Assert.True(g.ExitCode == 0, g.Err);
        Assert.Equal(8, g.Json()["generated_ids"]!.AsArray().Count);
    }

    [Fact]
    public void Malformed_files_and_bad_flags_are_one_line_errors()
    {
        string model = SharedModels.Stories260K;
        using var tmp = new TempDir();
        Assert.Equal(0, Cli.Run("export-gguf", model, "--out", tmp["s.gguf"], "--type", "f16").ExitCode);
        var bytes = File.ReadAllBytes(tmp["s.gguf"]);
        File.WriteAllBytes(tmp["cut.gguf"], bytes[..(bytes.Length / 3)]);
        Cli.AssertUserError(Cli.Run("import", tmp["cut.gguf"], "--out", tmp["pkg"]), "cut.gguf", "truncated");
        Assert.False(Directory.Exists(tmp["pkg"]));
        bytes[0] = (byte)'X';
        File.WriteAllBytes(tmp["magic.gguf"], bytes);
        Cli.AssertUserError(Cli.Run("import", tmp["magic.gguf"], "--out", tmp["pkg"]), "magic.gguf", "bad magic");
        Cli.AssertUserError(Cli.Run("export-gguf", model, "--out", tmp["x.gguf"], "--type", "q5_1"), "--type 'q5_1' is not valid");
        Cli.AssertUserError(Cli.Run("export-gguf", model, "--out", tmp["s.gguf"]), "exists");
        Cli.AssertUserError(Cli.Run("import", tmp["s.gguf"], "--out", tmp["pkg"], "--quant", "int8", "--eval"), "--eval");
        Cli.AssertUserError(Cli.Run("generate", "--model", tmp["s.gguf"], "--prompt", "Once"), "s.gguf", "import it first");
    }
}
