using System.Collections.Concurrent;
using System.Text;

namespace Strata.Models.Tokenization;

/// <summary>
/// The BPE model of a Hugging Face tokenizer: characters to ids (with byte fallback or unk), then merges applied
/// by rank, lowest first and leftmost on ties, exactly as <c>tokenizers</c>' <c>Word::merge_all</c> does.
/// A priority queue over a linked list of symbols keeps a word of n characters at O(n log n), so a
/// sentencepiece prompt (one "word" for the whole text) of thousands of tokens encodes in milliseconds.
/// Thread-safe: the only mutable state is the per-word cache.
/// </summary>
internal sealed class BpeModel
{
    // Words longer than this are not cached: a sentencepiece prompt is one long word and would rarely repeat.
    private const int MaxCachedWordLength = 256;
    private const int MaxCacheEntries = 100_000;

    private readonly Dictionary<string, int> vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> lookup;
    private readonly Dictionary<long, (int Rank, int NewId)> merges;
    private readonly int[] byteIds; // id of <0xXX> per byte, -1 when absent
    private readonly int? unkId;
    private readonly bool fuseUnk;
    private readonly bool byteFallback;
    private readonly bool ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);

    public BpeModel(
        Dictionary<string, int> vocab,
        Dictionary<long, (int Rank, int NewId)> merges,
        int? unkId,
        bool fuseUnk,
        bool byteFallback,
        bool ignoreMerges)
    {
        this.vocab = vocab.Comparer == StringComparer.Ordinal ? vocab : new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        lookup = this.vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        this.merges = merges;
        this.unkId = unkId;
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        byteIds = new int[256];
        for (int b = 0; b < 256; b++) byteIds[b] = this.vocab.TryGetValue(ByteTokens.Name((byte)b), out int id) ? id : -1;
    }

    /// <summary>The key of the merge map for a pair of ids.</summary>
    public static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Appends the ids of one pre-tokenized word to <paramref name="output"/>.</summary>
    public void EncodeWord(string word, List<int> output)
    {
        if (word.Length == 0) return;
        bool cacheable = word.Length <= MaxCachedWordLength;
        if (cacheable && cache.TryGetValue(word, out int[]? hit))
        {
            output.AddRange(hit);
            return;
        }
        int[] ids = ignoreMerges && vocab.TryGetValue(word, out int whole) ? [whole] : Merge(InitialSymbols(word));
        if (cacheable)
        {
            // A crude bound instead of LRU: clearing is rare and only costs re-encoding.
            if (cache.Count >= MaxCacheEntries) cache.Clear();
            cache[word] = ids;
        }
        output.AddRange(ids);
    }

    private List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        bool lastWasUnk = false;
        for (int i = 0; i < word.Length;)
        {
            // HF splits into Unicode scalar values, so a surrogate pair is one character.
            int n = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var ch = word.AsSpan(i, n);
            i += n;
            if (lookup.TryGetValue(ch, out int id))
            {
                symbols.Add(id);
                lastWasUnk = false;
            }
            else if (byteFallback && TryAddBytes(ch, symbols))
            {
                lastWasUnk = false;
            }
            else if (unkId is int unk)
            {
                if (!(fuseUnk && lastWasUnk)) symbols.Add(unk);
                lastWasUnk = true;
            }
            // With neither byte fallback nor unk, HF drops the character; so do we.
        }
        return symbols;
    }

    private bool TryAddBytes(ReadOnlySpan<char> ch, List<int> symbols)
    {
        Span<byte> utf8 = stackalloc byte[8];
        int n = Encoding.UTF8.GetBytes(ch, utf8);
        for (int k = 0; k < n; k++)
        {
            if (byteIds[utf8[k]] < 0) return false;
        }
        for (int k = 0; k < n; k++) symbols.Add(byteIds[utf8[k]]);
        return true;
    }

    private int[] Merge(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2 || merges.Count == 0) return [.. symbols];
        int[] ids = [.. symbols];
        var next = new int[n];
        var prev = new int[n];
        var dead = new bool[n];
        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (int i = 0; i < n; i++)
        {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
            if (i + 1 < n) TryQueue(queue, ids, i, i + 1);
        }
        while (queue.TryDequeue(out var top, out _))
        {
            int pos = top.Pos;
            if (dead[pos]) continue;
            int right = next[pos];
            if (right < 0) continue;
            // Stale entry: the pair at pos changed since it was queued (HF compares the new id the same way).
            if (!merges.TryGetValue(PairKey(ids[pos], ids[right]), out var m) || m.NewId != top.NewId) continue;
            ids[pos] = m.NewId;
            dead[right] = true;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) TryQueue(queue, ids, prev[pos], pos);
            if (next[pos] >= 0) TryQueue(queue, ids, pos, next[pos]);
        }
        var result = new List<int>(n);
        for (int i = 0; i >= 0; i = next[i]) result.Add(ids[i]);
        return [.. result];
    }

    private void TryQueue(PriorityQueue<(int Pos, int NewId), long> queue, int[] ids, int left, int right)
    {
        if (merges.TryGetValue(PairKey(ids[left], ids[right]), out var m))
            queue.Enqueue((left, m.NewId), ((long)m.Rank << 32) | (uint)left); // rank first, then leftmost
    }
}

/// <summary>Sentencepiece byte-fallback pieces <c>&lt;0xXX&gt;</c>.</summary>
internal static class ByteTokens
{
    private static readonly string[] Names = Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>").ToArray();

    /// <summary>The piece for byte <paramref name="b"/>, e.g. <c>&lt;0x0A&gt;</c>.</summary>
    public static string Name(byte b) => Names[b];

    /// <summary>Whether <paramref name="piece"/> is a byte piece, as HF's ByteFallback decoder recognises one.</summary>
    public static bool TryParse(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier,
                System.Globalization.CultureInfo.InvariantCulture, out value);
    }
}
