using System.Text;

namespace Strata.Fuzz.Tests;

/// <summary>
/// Damages a protobuf message (sentencepiece's <c>ModelProto</c>) the way <see cref="JsonMutator"/> damages JSON:
/// it parses the message into fields, descends into the nested messages that sentencepiece has (a piece, the trainer
/// spec, the normalizer spec), applies one to three changes there, and one time in five damages the bytes after
/// writing. Changes: a hostile varint (0, ids past the vocabulary, 2^31, 2^63, -1 as ten bytes), a hostile string
/// (empty, invalid UTF-8, a lone '▁', byte-piece lookalikes, up to 100 000 characters), a hostile float score
/// (NaN, infinities, extremes), a field removed, repeated up to 2000 times, added with a known number, or given
/// another wire type. Deterministic for a seed; the output is bounded (about 4 MB).
/// </summary>
internal static class ProtoMutator
{
    /// <summary>One field: its number, wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32) and value
    /// (the varint, or the raw bytes).</summary>
    internal sealed record Field(int Number, int Wire, ulong Varint, byte[] Bytes);

    private const int MaxOutput = 4 << 20;

    private static readonly ulong[] Varints =
    [
        0, 1, 2, 3, 4, 5, 6, 7, 255, 256, 511, 512, 513, 65536, int.MaxValue, (ulong)int.MaxValue + 1, uint.MaxValue,
        long.MaxValue, ulong.MaxValue, unchecked((ulong)-2L), unchecked((ulong)(long)int.MinValue),
    ];

    private static readonly float[] Floats = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, float.MinValue, -0f, 1e-45f];

    // Numbers sentencepiece reads, per message: ModelProto (pieces, trainer_spec, normalizer_spec), SentencePiece
    // (piece, score, type), TrainerSpec (model_type, vocab_size, byte_fallback, unk/bos/eos/pad ids and pieces),
    // NormalizerSpec (name, precompiled_charsmap, add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces).
    private static readonly int[] TopNumbers = [1, 2, 3, 4, 5];
    private static readonly int[] PieceNumbers = [1, 2, 3];
    private static readonly int[] TrainerNumbers = [3, 4, 25, 26, 35, 40, 41, 42, 43, 44, 45, 46, 47];
    private static readonly int[] NormalizerNumbers = [1, 2, 3, 4, 5];

    /// <summary>A damaged copy of <paramref name="valid"/>, the same for the same <paramref name="seed"/>.</summary>
    public static byte[] Mutate(byte[] valid, int seed)
    {
        var rng = new Random(seed);
        var top = Parse(valid) ?? throw new ArgumentException("the seed is not a protobuf message", nameof(valid));
        int changes = rng.Next(1, 4);
        for (int i = 0; i < changes; i++) MutateSomewhere(top, rng);
        byte[] bytes = Write(top);
        if (bytes.Length > MaxOutput) bytes = bytes[..MaxOutput];
        return rng.Next(5) == 0 ? Damage(bytes, rng) : bytes;
    }

    private static void MutateSomewhere(List<Field> top, Random rng)
    {
        int where = rng.Next(4);
        int nested = where switch { 1 => 1, 2 => 2, 3 => 3, _ => 0 };
        var candidates = nested == 0 ? [] : top.Select((f, i) => (f, i)).Where(x => x.f.Number == nested && x.f.Wire == 2).ToList();
        if (candidates.Count == 0)
        {
            MutateFields(top, TopNumbers, rng);
            return;
        }
        var (field, index) = candidates[rng.Next(candidates.Count)];
        if (Parse(field.Bytes) is not { } inner)
        {
            MutateFields(top, TopNumbers, rng);
            return;
        }
        MutateFields(inner, nested switch { 1 => PieceNumbers, 2 => TrainerNumbers, _ => NormalizerNumbers }, rng);
        top[index] = field with { Bytes = Write(inner) };
    }

    private static void MutateFields(List<Field> fields, int[] known, Random rng)
    {
        int at = fields.Count == 0 ? -1 : rng.Next(fields.Count);
        switch (rng.Next(7))
        {
            case 0 when at >= 0: // a hostile value of the field's own type
                fields[at] = Hostile(fields[at], rng);
                break;
            case 1: // a known field added, with a hostile value
                int number = known[rng.Next(known.Length)];
                var added = Hostile(new Field(number, new[] { 0, 2, 5 }[rng.Next(3)], 0, []), rng);
                fields.Insert(at < 0 ? 0 : rng.Next(fields.Count + 1), added);
                break;
            case 2 when at >= 0:
                fields.RemoveAt(at);
                break;
            case 3 when at >= 0: // repeated
                int copies = rng.Next(4) == 0 ? rng.Next(1, 2001) : rng.Next(1, 4);
                for (int i = 0; i < copies && Size(fields) < MaxOutput; i++) fields.Insert(at, fields[at]);
                break;
            case 4 when at >= 0: // another wire type, with a value of that type
                fields[at] = Hostile(fields[at] with { Wire = new[] { 0, 1, 2, 5, 3, 7 }[rng.Next(6)] }, rng);
                break;
            case 5 when at >= 0: // moved
                var moved = fields[at];
                fields.RemoveAt(at);
                fields.Insert(rng.Next(fields.Count + 1), moved);
                break;
            default: // a field number nobody reads, or a hostile value anywhere
                if (at >= 0 && rng.Next(2) == 0) fields[at] = Hostile(fields[at], rng);
                else fields.Add(Hostile(new Field(rng.Next(1, 1 << 16), rng.Next(2) * 2, 0, []), rng));
                break;
        }
    }

    private static Field Hostile(Field f, Random rng) => f.Wire switch
    {
        0 => f with { Varint = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : Varints[rng.Next(Varints.Length)], Bytes = [] },
        1 => f with { Bytes = BitConverter.GetBytes(rng.Next(2) == 0 ? double.NaN : (double)Floats[rng.Next(Floats.Length)]) },
        5 => f with { Bytes = BitConverter.GetBytes(Floats[rng.Next(Floats.Length)]) },
        2 => f with { Bytes = HostileBytes(rng) },
        _ => f with { Bytes = [] }, // wire types 3 and 7 carry nothing: the reader must refuse them
    };

    private static byte[] HostileBytes(Random rng) => rng.Next(10) switch
    {
        0 => [],
        1 => [0xFF, 0xFE, 0x80],
        2 => Encoding.UTF8.GetBytes("\u2581"),
        3 => Encoding.UTF8.GetBytes(new[] { "<0x41>", "<0xZZ>", "<0x100>", "<0x>", "<unk>", "<s>", "</s>" }[rng.Next(7)]),
        4 => Encoding.UTF8.GetBytes(new string('a', rng.Next(1, 100_001))),
        5 => [0xED, 0xA0, 0x80], // a surrogate encoded as UTF-8
        6 => Encoding.UTF8.GetBytes("\u2581\u2581 \t\n\0"),
        7 => [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], // a nested field whose length runs past the end
        _ => Enumerable.Range(0, rng.Next(1, 64)).Select(_ => (byte)rng.Next(256)).ToArray(),
    };

    private static byte[] Damage(byte[] bytes, Random rng)
    {
        if (bytes.Length == 0) return [(byte)rng.Next(256)];
        var copy = bytes.ToList();
        switch (rng.Next(3))
        {
            case 0:
                return bytes[..rng.Next(bytes.Length)];
            case 1:
                for (int i = rng.Next(1, 9); i > 0; i--) copy[rng.Next(copy.Count)] = (byte)rng.Next(256);
                return [.. copy];
            default:
                copy.InsertRange(rng.Next(copy.Count + 1), Enumerable.Range(0, rng.Next(1, 9)).Select(_ => (byte)rng.Next(256)));
                return [.. copy];
        }
    }

    /// <summary><paramref name="model"/> (a ModelProto) with varint field <paramref name="number"/> of its trainer
    /// spec set to <paramref name="value"/>.</summary>
    public static byte[] WithTrainerValue(byte[] model, int number, ulong value)
    {
        var top = Parse(model)!;
        int at = top.FindIndex(f => f.Number == 2 && f.Wire == 2);
        var trainer = Parse(top[at].Bytes)!;
        trainer.RemoveAll(f => f.Number == number);
        trainer.Add(new Field(number, 0, value, []));
        top[at] = top[at] with { Bytes = Write(trainer) };
        return Write(top);
    }

    /// <summary><paramref name="model"/> (a ModelProto) with its piece number <paramref name="from"/> moved to the end
    /// of the pieces, so that it gets the last id.</summary>
    public static byte[] WithPieceMovedLast(byte[] model, int from)
    {
        var top = Parse(model)!;
        var pieces = top.Select((f, i) => (f, i)).Where(x => x.f.Number == 1).Select(x => x.i).ToList();
        var moved = top[pieces[from]];
        top.RemoveAt(pieces[from]);
        top.Insert(pieces[^1], moved);
        return Write(top);
    }

    /// <summary>The fields of <paramref name="data"/>, or null where it is not a well-formed message.</summary>
    internal static List<Field>? Parse(ReadOnlySpan<byte> data)
    {
        var fields = new List<Field>();
        int i = 0;
        while (i < data.Length)
        {
            if (!ReadVarint(data, ref i, out ulong tag) || tag >> 3 is 0 or > int.MaxValue) return null;
            int number = (int)(tag >> 3), wire = (int)(tag & 7);
            switch (wire)
            {
                case 0:
                    if (!ReadVarint(data, ref i, out ulong v)) return null;
                    fields.Add(new Field(number, 0, v, []));
                    break;
                case 1 or 5:
                    int n = wire == 1 ? 8 : 4;
                    if (i + n > data.Length) return null;
                    fields.Add(new Field(number, wire, 0, data.Slice(i, n).ToArray()));
                    i += n;
                    break;
                case 2:
                    if (!ReadVarint(data, ref i, out ulong length) || length > (ulong)(data.Length - i)) return null;
                    fields.Add(new Field(number, 2, 0, data.Slice(i, (int)length).ToArray()));
                    i += (int)length;
                    break;
                default:
                    return null;
            }
        }
        return fields;
    }

    private static bool ReadVarint(ReadOnlySpan<byte> data, ref int i, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && i < data.Length; shift += 7)
        {
            byte b = data[i++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return true;
        }
        return false;
    }

    internal static byte[] Write(List<Field> fields)
    {
        var output = new List<byte>(Size(fields));
        foreach (var f in fields)
        {
            WriteVarint(output, (ulong)f.Number << 3 | (uint)f.Wire);
            if (f.Wire == 0) WriteVarint(output, f.Varint);
            else if (f.Wire == 2) WriteVarint(output, (ulong)f.Bytes.Length);
            output.AddRange(f.Bytes);
            if (output.Count > MaxOutput) break;
        }
        return [.. output];
    }

    private static int Size(List<Field> fields) => fields.Sum(f => f.Bytes.Length + 12);

    private static void WriteVarint(List<byte> output, ulong value)
    {
        for (; value >= 0x80; value >>= 7) output.Add((byte)(value | 0x80));
        output.Add((byte)value);
    }
}
