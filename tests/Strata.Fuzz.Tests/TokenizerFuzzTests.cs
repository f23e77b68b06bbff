using System.Text;
using CsCheck;
using Strata.Models;
using Strata.Models.Tokenization;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// <see cref="TokenizerLoader.Load"/> on model folders whose <c>tokenizer.json</c> (and sometimes the files around it:
/// tokenizer_config.json, special_tokens_map.json, config.json, generation_config.json) are random or mutated. A
/// tokenizer that loads must then encode, decode and stream a few texts without failing, and give only ids of its
/// vocabulary: the stages trust those ids.
/// </summary>
public sealed class TokenizerFuzzTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    // A byte-level tokenizer (GPT-2 / Llama 3 kind) with a regex Split, an added token and NFC.
    internal const string ByteLevelTokenizer = """
        {"version":"1.0","added_tokens":[{"id":5,"content":"<|end|>","special":true,"lstrip":false,"rstrip":false,"single_word":false}],
         "normalizer":{"type":"NFC"},
         "pre_tokenizer":{"type":"Sequence","pretokenizers":[
           {"type":"Split","pattern":{"Regex":"\\p{L}+|\\s+|[^\\s\\p{L}]+"},"behavior":"Isolated","invert":false},
           {"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},
         "post_processor":{"type":"ByteLevel"},
         "decoder":{"type":"ByteLevel"},
         "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"Ġab":4},"merges":["a b",["Ġ","ab"]],"ignore_merges":false}}
        """;

    private static readonly string[] SideFiles = ["tokenizer_config.json", "special_tokens_map.json", "config.json", "generation_config.json"];
    private static readonly string[] Texts = ["Once upon a time", "", " ", "<s>hi</s> <|end|>", "ab ab\nab", "\ud83d\ude00 é 12 \u2581", "\ud800x"];

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RandomTokenizerJsonLoadsOrFailsTyped() =>
        Fuzz.Check(output, "tokenizer.json", Gen.Byte.Array[0, 200], bytes => Load(bytes, sideSeed: null), Typed, cases: 300,
            print: b => Encoding.UTF8.GetString(b));

    [Fact]
    public void MutatedTokenizersLoadOrFailTyped()
    {
        string[] seeds = [Seeds.Read("tokenizer.json"), ByteLevelTokenizer];
        var gen = Gen.Int[0, seeds.Length - 1].Select(Gen.Int, Gen.Int[0, 3], (which, seed, side) =>
            (Json: JsonMutator.Mutate(seeds[which], seed), Side: side == 0 ? seed : (int?)null));
        Fuzz.Check(output, "tokenizer.json", gen, c => Load(c.Json, c.Side), Typed, cases: 700,
            print: c => ConfigFuzzTests.Clip(Encoding.UTF8.GetString(c.Json)) + (c.Side is int s ? $" (side files mutated, seed {s})" : ""));
    }

    private void Load(byte[] tokenizerJson, int? sideSeed)
    {
        string dir = ModelFolder(_dir, "tokenizer.json", tokenizerJson, sideSeed);
        Exercise(TokenizerLoader.Load(dir));
    }

    /// <summary>A fresh folder <c>m</c> in <paramref name="root"/> with <paramref name="bytes"/> as
    /// <paramref name="file"/> and stories260K's side files, mutated where <paramref name="sideSeed"/>'s bits say.</summary>
    internal static string ModelFolder(TempDir root, string file, byte[] bytes, int? sideSeed)
    {
        string dir = Path.Combine(root.Path, "m");
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, file), bytes);
        for (int i = 0; i < SideFiles.Length; i++)
        {
            string valid = Seeds.Read(SideFiles[i]);
            File.WriteAllBytes(Path.Combine(dir, SideFiles[i]),
                sideSeed is int s && (s >> i & 1) == 1 ? JsonMutator.Mutate(valid, s + i) : Encoding.UTF8.GetBytes(valid));
        }
        return dir;
    }

    /// <summary>What a tokenizer that loaded must do without failing: encode, decode and stream every text, with ids
    /// (BOS and stop ids included) inside its vocabulary.</summary>
    internal static void Exercise(ITokenizer tokenizer)
    {
        foreach (string text in Texts)
        {
            int[] ids = tokenizer.Encode(text);
            if (ids.FirstOrDefault(id => (uint)id >= (uint)tokenizer.VocabSize) is int bad && ids.Any(id => (uint)id >= (uint)tokenizer.VocabSize))
                throw new FuzzFailure($"encoding '{text}' gave id {bad}, outside the vocabulary of {tokenizer.VocabSize}");
            tokenizer.Decode(ids);
            var stream = tokenizer.CreateStreamingDecoder();
            foreach (int id in ids) stream.Push(id);
            stream.Flush();
        }
        foreach (int id in tokenizer.EosIds.Append(tokenizer.BosId ?? 0))
            if ((uint)id >= (uint)tokenizer.VocabSize) throw new FuzzFailure($"BOS/EOS id {id} is outside the vocabulary of {tokenizer.VocabSize}");
    }

    private string? Typed(Exception e) => Fuzz.Only<ModelFormatException>(m =>
        !m.File.StartsWith(_dir.Path, StringComparison.Ordinal) ? $"the error names '{m.File}', not a file of the model" : null)(e);
}
