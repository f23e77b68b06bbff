namespace Strata.Cli.Tests;

public sealed class GenerateCommandTests
{
    private static string Synth(TempDir tmp, string name, params string[] extra)
    {
        string dir = tmp[name];
        var r = Cli.Run(["synth", "--out", dir, "--preset", "tiny", "--seed", "11", .. extra]);
        Assert.True(r.ExitCode == 0, r.Err);
        return dir;
    }

    [Fact]
    public void Json_output_is_one_object_with_the_documented_fields()
    {
        using var tmp = new TempDir();
        string model = Synth(tmp, "m");
        var r = Cli.Run("generate", "--model", model, "--prompt", "hello world", "--max-new-tokens", "7", "--json");
        Assert.Equal(0, r.ExitCode);
        var o = r.Json();
        Assert.Equal(["prompt_ids", "generated_ids", "text", "stop_reason"], o.Select(kv => kv.Key));
        Assert.Equal(1, (int)o["prompt_ids"]![0]!); // BOS
        var generated = o["generated_ids"]!.AsArray();
        Assert.InRange(generated.Count, 1, 7);
        Assert.Equal(generated.Count == 7 ? "length" : "stop", (string)o["stop_reason"]!);
        Assert.Equal(r.Out.Trim(), r.Out.TrimEnd('\n')); // a single line, nothing else on stdout
    }

    [Fact]
    public void Stage_count_does_not_change_greedy_output_and_a_package_generates_like_its_source()
    {
        using var tmp = new TempDir();
        string model = Synth(tmp, "m", "--layers", "3");
        string Generate(string path, int stages) =>
            Cli.Run("generate", "--model", path, "--prompt", "The quick brown fox", "--max-new-tokens", "12", "--json",
                "--stages", stages.ToString()).Out;

        string one = Generate(model, 1);
        Assert.Equal(one, Generate(model, 2));
        Assert.Equal(one, Generate(model, 3));

        var import = Cli.Run("import", model, "--out", tmp["pkg"]);
        Assert.True(import.ExitCode == 0, import.Err);
        Assert.Equal(one, Generate(tmp["pkg"], 2));
    }

    [Fact]
    public void Same_seed_same_tokens_and_stop_strings_end_the_text()
    {
        using var tmp = new TempDir();
        string model = Synth(tmp, "m");
        string[] args = ["generate", "--model", model, "--prompt", "abc", "--max-new-tokens", "20", "--json", "--temperature", "1.0", "--top-k", "40", "--seed", "3"];
        var a = Cli.Run(args);
        Assert.Equal(a.Out, Cli.Run(args).Out);
        Assert.NotEqual(a.Out, Cli.Run([.. args[..^1], "4"]).Out);

        string text = (string)a.Json()["text"]!;
        if (text.Length >= 4)
        {
            string stop = text.Substring(2, 2);
            var s = Cli.Run([.. args, "--stop", stop]).Json();
            Assert.Equal("stop", (string)s["stop_reason"]!);
            Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], (string)s["text"]!);
        }
    }

    [Fact]
    public void Stories260K_continues_with_the_published_sample_and_stops_on_its_stop_id()
    {
        string dir = SharedModels.Stories260K;
        var r = Cli.Run("generate", "--model", dir, "--prompt", "Once upon a time", "--max-new-tokens", "400", "--json");
        Assert.Equal(0, r.ExitCode);
        var o = r.Json();
        Assert.Equal([1, 403, 407, 261, 378], o["prompt_ids"]!.AsArray().Select(n => (int)n!));
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", (string)o["text"]!);
        var ids = o["generated_ids"]!.AsArray().Select(n => (int)n!).ToArray();
        if ((string)o["stop_reason"]! == "stop") Assert.Contains(ids[^1], new[] { 1, 2 });
        else Assert.Equal(400, ids.Length);
    }

    [Fact]
    public void Bad_flags_are_user_errors_naming_the_flag()
    {
        using var tmp = new TempDir();
        string model = Synth(tmp, "m");
        Cli.AssertUserError(Cli.Run("generate", "--model", model, "--prompt", "x", "--temperature", "-1"), "temperature");
        Cli.AssertUserError(Cli.Run("generate", "--model", model, "--prompt", "x", "--top-p", "0"), "top_p");
        Cli.AssertUserError(Cli.Run("generate", "--model", model, "--prompt", "x", "--stages", "9"), "--stages");
        Cli.AssertUserError(Cli.Run("generate", "--model", model, "--prompt", "x", "--device", "tpu"), "tpu");
        Cli.AssertUserError(Cli.Run("generate", "--model", model, "--prompt", "a long prompt that does not fit", "--max-context", "4"), "max-context");
        Cli.AssertUserError(Cli.Run("generate", "--model", tmp["missing"], "--prompt", "x"), "missing");
    }
}
