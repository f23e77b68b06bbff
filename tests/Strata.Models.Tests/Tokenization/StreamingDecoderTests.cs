using System.Text;
using Strata.Models.Tokenization;

namespace Strata.Models.Tests.Tokenization;

/// <summary>Streaming output must concatenate to Decode and never show half a character.</summary>
public sealed class StreamingDecoderTests
{
    private static readonly string[] Prompts =
    [
        "Once upon a time",
        "  two  spaces ",
        "ë",
        "é’“”—…",
        "a\nb",
        "tab\there",
        "",
        " ",
        "   ",
        "€ — ✓ 😀 𝄞 中文 한국어 العربية",
        "Lily's mom said, \"Let's go!\"\n\nThe end.",
        "ñandú über straße",
    ];

    private static string Stream(ITokenizer tokenizer, IEnumerable<int> ids, List<string>? pieces = null)
    {
        var decoder = tokenizer.CreateStreamingDecoder();
        var output = new StringBuilder();
        foreach (int id in ids)
        {
            string piece = decoder.Push(id);
            pieces?.Add(piece);
            output.Append(piece);
        }
        string tail = decoder.Flush();
        pieces?.Add(tail);
        return output.Append(tail).ToString();
    }

    private static void AssertStreamsLikeDecode(ITokenizer tokenizer, string text)
    {
        int[] ids = tokenizer.Encode(text);
        var pieces = new List<string>();

        Assert.Equal(tokenizer.Decode(ids), Stream(tokenizer, ids, pieces));
        Assert.Equal(text, Stream(tokenizer, ids));
        Assert.All(pieces, p => Assert.DoesNotContain('\uFFFD', p));
    }

    [Fact]
    public void Stories260K_streams_every_prompt_like_decode()
    {
        string dir = TestModels.Stories260K();
        var tokenizer = TokenizerLoader.Load(dir);
        foreach (string text in Prompts) AssertStreamsLikeDecode(tokenizer, text);
    }

    [Fact]
    public void Stories260K_waits_for_the_whole_character()
    {
        string dir = TestModels.Stories260K();
        var decoder = TokenizerLoader.Load(dir).CreateStreamingDecoder();

        // "ë" is ▁ <0xC3> <0xAB>: the leading space is stripped, the first byte held.
        Assert.Equal("", decoder.Push(410));
        Assert.Equal("", decoder.Push(198));
        Assert.Equal("ë", decoder.Push(174));
        Assert.Equal("", decoder.Flush());
    }

    [Theory]
    [InlineData(260)] // every character but ▁ falls back to bytes
    [InlineData(512)]
    public void Synthetic_streams_random_unicode_like_decode(int vocabSize)
    {
        using var tmp = TestModels.NewTempDir();
        SyntheticTokenizer.Write(tmp.Path, vocabSize);
        var tokenizer = TokenizerLoader.Load(tmp.Path);
        var random = new Random(1234);

        foreach (string text in Prompts) AssertStreamsLikeDecode(tokenizer, text);
        for (int i = 0; i < 50; i++) AssertStreamsLikeDecode(tokenizer, RandomText.Make(random, 40));
    }

    [Fact]
    public void Leading_space_is_stripped_once_at_the_start_only()
    {
        using var tmp = TestModels.NewTempDir();
        SyntheticTokenizer.Write(tmp.Path, 300);
        var tokenizer = TokenizerLoader.Load(tmp.Path);
        const int space = 259; // "▁"
        var decoder = tokenizer.CreateStreamingDecoder();

        Assert.Equal("", decoder.Push(1)); // <s>: skipped, the strip still pending
        Assert.Equal("", decoder.Push(space));
        Assert.Equal(" ", decoder.Push(space));
        Assert.Equal(" ", decoder.Push(space));
        Assert.Equal("  ", tokenizer.Decode([1, space, space, space]));
    }

    [Fact]
    public void Invalid_byte_sequences_stream_exactly_like_decode()
    {
        // Random ids over specials and bytes (3..258) make truncated and invalid UTF-8; the streamed replacement
        // characters must match the one-shot decode's exactly.
        using var tmp = TestModels.NewTempDir();
        SyntheticTokenizer.Write(tmp.Path, 260);
        var tokenizer = TokenizerLoader.Load(tmp.Path);
        var random = new Random(42);
        for (int run = 0; run < 500; run++)
        {
            int[] ids = Enumerable.Range(0, random.Next(1, 12)).Select(_ => random.Next(0, 262)).ToArray();
            Assert.Equal(tokenizer.Decode(ids), Stream(tokenizer, ids));
        }
    }

    [Fact]
    public void Ids_outside_the_vocabulary_are_ignored()
    {
        using var tmp = TestModels.NewTempDir();
        SyntheticTokenizer.Write(tmp.Path, 300);
        var tokenizer = TokenizerLoader.Load(tmp.Path);
        int[] ids = [.. tokenizer.Encode("hi"), 300, 5000, -1];

        Assert.Equal("hi", tokenizer.Decode(ids));
        Assert.Equal("hi", Stream(tokenizer, ids));
    }
}

/// <summary>Random valid text over many scripts, including characters outside the BMP.</summary>
internal static class RandomText
{
    private static readonly (int From, int To)[] Ranges =
    [
        (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0x0A, 0x0A), (0x09, 0x09), (0xA0, 0x17F), (0x370, 0x3FF),
        (0x400, 0x4FF), (0x600, 0x6FF), (0x2000, 0x206F), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3),
        (0x1F300, 0x1F64F), (0x1D400, 0x1D7FF),
    ];

    public static string Make(Random random, int maxLength)
    {
        var text = new StringBuilder();
        int n = random.Next(0, maxLength + 1);
        for (int i = 0; i < n; i++)
        {
            var (from, to) = Ranges[random.Next(Ranges.Length)];
            text.Append(char.ConvertFromUtf32(random.Next(from, to + 1)));
        }
        return text.ToString();
    }
}
