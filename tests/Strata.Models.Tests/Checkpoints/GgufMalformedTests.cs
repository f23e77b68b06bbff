using System.Buffers.Binary;
using System.Text;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Models.Tests.Checkpoints;

/// <summary>Malformed GGUF files fail with a <see cref="ModelFormatException"/> naming the file and the key or tensor.</summary>
public sealed class GgufMalformedTests : IDisposable
{
    private readonly ScratchDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Valid(GgmlType type = GgmlType.F32) =>
        File.Exists(_dir.Sub($"model-{type}.gguf")) ? _dir.Sub($"model-{type}.gguf") : GgufFiles.Synthetic(_dir, type);

    private ModelFormatException Fails(string path, string? item, string problem)
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufCheckpoint.Open(path).Dispose());
        Assert.Equal(path, e.File);
        Assert.Equal(item, e.Item);
        Assert.Contains(problem, e.Problem);
        Assert.StartsWith(path, e.Message);
        return e;
    }

    /// <summary>A header built by hand: magic, version, counts, then whatever <paramref name="body"/> writes.</summary>
    private string Handmade(string name, Action<BinaryWriter> body, uint version = 3, ulong tensors = 0, ulong kvs = 1, int padTo = 0)
    {
        string path = _dir.Sub(name);
        using (var w = new BinaryWriter(File.Create(path)))
        {
            w.Write(GgufFile.Magic);
            w.Write(version);
            w.Write(tensors);
            w.Write(kvs);
            body(w);
            while (w.BaseStream.Position < padTo) w.Write((byte)0);
        }
        return path;
    }

    private static void Str(BinaryWriter w, string s)
    {
        w.Write((ulong)Encoding.UTF8.GetByteCount(s));
        w.Write(Encoding.UTF8.GetBytes(s));
    }

    [Fact]
    public void Missing_and_tiny_files()
    {
        Fails(_dir.Sub("absent.gguf"), null, "file not found");
        File.WriteAllBytes(_dir.Sub("tiny.gguf"), [0x47, 0x47]);
        Fails(_dir.Sub("tiny.gguf"), null, "shorter than the 4-byte GGUF magic");
    }

    [Fact]
    public void Bad_magic()
    {
        string path = GgufFiles.Edited(Valid(), "magic.gguf", b => { b[0] = (byte)'X'; return b; });
        Fails(path, null, "bad magic");
        // A safetensors file given where GGUF was expected says so too.
        Fails(GgufFiles.Edited(Valid(), "st.gguf", _ => File.ReadAllBytes(Path.Combine(_dir.Sub("model-src"), "model.safetensors"))), null, "not a GGUF file");
    }

    [Theory]
    [InlineData(1u, "GGUF version 1 (32-bit counts) is not supported")]
    [InlineData(4u, "GGUF version 4 is not supported")]
    [InlineData(0x03000000u, "big-endian GGUF file")]
    public void Unsupported_versions(uint version, string problem)
    {
        string path = GgufFiles.Edited(Valid(), $"v{version}.gguf", b => { BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), version); return b; });
        Fails(path, "version", problem);
    }

    [Fact]
    public void Truncated_headers_at_every_point_fail_by_name()
    {
        byte[] bytes = File.ReadAllBytes(Valid());
        long dataStart;
        using (var f = GgufFile.Open(Valid())) dataStart = f.DataStart;
        for (int cut = 4; cut < dataStart; cut += Math.Max(1, (int)dataStart / 97))
        {
            string path = _dir.Sub($"cut-{cut}.gguf");
            File.WriteAllBytes(path, bytes[..cut]);
            var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Matches("truncated|runs past the end|more than the file|needs more bytes", e.Problem);
        }
    }

    [Fact]
    public void Truncated_tensor_data_names_the_tensor()
    {
        byte[] bytes = File.ReadAllBytes(Valid());
        string path = _dir.Sub("short-data.gguf");
        File.WriteAllBytes(path, bytes[..^40]);
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.Contains("runs past the end of the data section", e.Problem);
        Assert.Equal("output.weight", e.Item); // the last tensor written
    }

    [Fact]
    public void Absurd_counts_are_refused_before_anything_is_allocated()
    {
        Fails(GgufFiles.Edited(Valid(), "tensors.gguf", b => { BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), 1UL << 60); return b; }),
            null, "tensor count 1152921504606846976 is more than");
        Fails(GgufFiles.Edited(Valid(), "kvs.gguf", b => { BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), ulong.MaxValue); return b; }),
            null, "metadata count 18446744073709551615 is more than");
        Fails(Handmade("keylen.gguf", w => w.Write(1UL << 62), padTo: 64), null, "string length 4611686018427387904 runs past the end");
        Fails(Handmade("strlen.gguf", w => { Str(w, "general.name"); w.Write((uint)GgufValueType.String); w.Write(ulong.MaxValue - 3); }, padTo: 64),
            "general.name", "runs past the end");
        Fails(Handmade("array.gguf", w =>
        {
            Str(w, "tokenizer.ggml.scores");
            w.Write((uint)GgufValueType.Array);
            w.Write((uint)GgufValueType.Float32);
            w.Write(1UL << 40);
        }, padTo: 64), "tokenizer.ggml.scores", "array length 1099511627776 of Float32 needs more bytes");
        Fails(Handmade("nested.gguf", w =>
        {
            Str(w, "deep");
            w.Write((uint)GgufValueType.Array);
            for (int i = 0; i < 3; i++)
            {
                w.Write((uint)GgufValueType.Array);
                w.Write(1UL);
            }
        }, padTo: 64), "deep", "nested more than 2 deep");
    }

    [Fact]
    public void Bad_values_and_types_in_the_metadata()
    {
        Fails(Handmade("vtype.gguf", w => { Str(w, "general.name"); w.Write(77u); }, padTo: 64), "general.name", "unknown metadata value type 77");
        Fails(Handmade("bool.gguf", w => { Str(w, "flag"); w.Write((uint)GgufValueType.Bool); w.Write((byte)7); }, padTo: 64), "flag", "neither 0 nor 1");
        Fails(Handmade("utf8.gguf", w => { w.Write(2UL); w.Write(new byte[] { 0xC3, 0x28 }); w.Write((uint)GgufValueType.UInt8); w.Write((byte)0); }, padTo: 64),
            null, "not valid UTF-8");
        Fails(Handmade("dup.gguf", w =>
        {
            for (int i = 0; i < 2; i++)
            {
                Str(w, "general.name");
                w.Write((uint)GgufValueType.UInt8);
                w.Write((byte)0);
            }
        }, kvs: 2, padTo: 64), "general.name", "appears twice");
        Fails(Handmade("align.gguf", w => { Str(w, "general.alignment"); w.Write((uint)GgufValueType.UInt32); w.Write(24u); }, padTo: 64),
            "general.alignment", "power of two");
    }

    /// <summary>One tensor "t" of 32 F32 values, with the given raw type, dimensions and offset.</summary>
    private string OneTensor(string name, uint type, ulong[] dims, ulong offset, int dataBytes = 128)
    {
        string path = Handmade(name, w =>
        {
            Str(w, "t");
            w.Write((uint)dims.Length);
            foreach (ulong d in dims) w.Write(d);
            w.Write(type);
            w.Write(offset);
            while (w.BaseStream.Position % 32 != 0) w.Write((byte)0);
            w.Write(new byte[dataBytes]);
        }, tensors: 1, kvs: 0);
        return path;
    }

    [Fact]
    public void Bad_tensor_infos_name_the_tensor()
    {
        Fails(OneTensor("q5.gguf", 6, [32], 0), "t", "tensor type Q5_0 is not supported");
        Fails(OneTensor("type99.gguf", 99, [32], 0), "t", "tensor type type 99 is not supported");
        Fails(OneTensor("misaligned.gguf", 0, [16], 4), "t", "data offset 4 is not a multiple of the file's alignment 32");
        Fails(OneTensor("oob.gguf", 0, [32], 64), "t", "runs past the end of the data section");
        Fails(OneTensor("dims.gguf", 0, [1, 1, 1, 1, 32], 0), "t", "5 dimensions");
        Fails(OneTensor("zero.gguf", 0, [32, 0], 0), "t", "dimension 1 is 0");
        Fails(OneTensor("huge.gguf", 0, [1UL << 40, 1UL << 40, 1UL << 40], 0), "t", "needs more bytes than the file's");
        Fails(OneTensor("wide.gguf", 0, [1UL << 62], 0), "t", "needs more bytes than the file's");
        Fails(OneTensor("block.gguf", (uint)GgmlType.Q8_0, [48], 0), "t", "not a multiple of Q8_0's block of 32");
    }

    [Fact]
    public void Unsupported_architecture_and_missing_keys_and_tensors()
    {
        var w = new GgufWriter().Add("general.architecture", "mamba");
        w.Write(_dir.Sub("mamba.gguf"));
        Fails(_dir.Sub("mamba.gguf"), "general.architecture", "architecture 'mamba' is not supported (supported: llama, qwen2)");

        new GgufWriter().Add("general.architecture", "llama").Add("llama.embedding_length", 64u).Write(_dir.Sub("keys.gguf"));
        Fails(_dir.Sub("keys.gguf"), "llama.attention.head_count", "required key is missing");

        // A valid file less one tensor: rewrite it with the writer, skipping blk.1.ffn_up.weight.
        string path = Rewrite("no-up.gguf", skip: "blk.1.ffn_up.weight");
        Fails(path, "blk.1.ffn_up.weight", "tensor is missing");
        Fails(Rewrite("bad-shape.gguf", reshape: "blk.0.attn_k.weight"), "blk.0.attn_k.weight", "does not match");
        Fails(Rewrite("no-tokens.gguf", dropKey: "tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", "required key is missing");
        Fails(Rewrite("heads.gguf", setKey: ("llama.attention.head_count_kv", GgufValue.Of(GgufValueType.UInt32, 3u))),
            "llama.attention.head_count_kv", "does not divide");
        Fails(Rewrite("typed.gguf", setKey: ("llama.block_count", GgufValue.Of(GgufValueType.String, "two"))), "llama.block_count", "expected an integer");
        Fails(Rewrite("tok-model.gguf", setKey: ("tokenizer.ggml.model", GgufValue.Of(GgufValueType.String, "bert"))), "tokenizer.ggml.model", "'bert' is not supported");
    }

    [Fact]
    public void Optional_keys_may_be_absent()
    {
        string path = Rewrite("bare.gguf", dropKey: "tokenizer.ggml.bos_token_id");
        path = RewriteFrom(path, "bare2.gguf", "tokenizer.ggml.eos_token_id");
        path = RewriteFrom(path, "bare3.gguf", "tokenizer.ggml.token_type");
        path = RewriteFrom(path, "bare4.gguf", "llama.context_length");
        var package = ModelImporter.Import(path, _dir.Sub("bare"));
        Assert.Equal(2048, package.Config.MaxPositionEmbeddings);
        var tokenizer = Strata.Models.Tokenization.TokenizerLoader.Load(package.Directory);
        Assert.Null(tokenizer.BosId);
        Assert.Empty(tokenizer.EosIds);
        Assert.NotEmpty(tokenizer.Encode("Once upon a time"));
    }

    private string RewriteFrom(string from, string name, string dropKey)
    {
        using var f = GgufFile.Open(from);
        var w = new GgufWriter();
        foreach (var (key, value) in f.Metadata.Where(m => m.Key != dropKey)) w.Add(key, value);
        foreach (var t in f.Tensors.Values.OrderBy(t => t.Offset))
        {
            byte[] bytes = f.Bytes(t, 0, (int)t.ByteLength).ToArray();
            w.AddTensor(t.Name, t.Type, t.Shape, () => bytes);
        }
        w.Write(_dir.Sub(name));
        return _dir.Sub(name);
    }

    /// <summary>Rewrites the valid F32 file through <see cref="GgufWriter"/> with one change.</summary>
    private string Rewrite(string name, string? skip = null, string? reshape = null, string? dropKey = null, (string Key, GgufValue Value)? setKey = null)
    {
        using var f = GgufFile.Open(Valid());
        var w = new GgufWriter();
        foreach (var (key, value) in f.Metadata)
        {
            if (key == dropKey) continue;
            w.Add(key, setKey is { } s && s.Key == key ? s.Value : value);
        }
        foreach (var t in f.Tensors.Values.OrderBy(t => t.Offset))
        {
            if (t.Name == skip) continue;
            byte[] bytes = f.Bytes(t, 0, (int)t.ByteLength).ToArray();
            long[] shape = t.Shape;
            if (t.Name == reshape)
            {
                shape = [shape[0] / 2, shape[1]];
                bytes = bytes[..(bytes.Length / 2)];
            }
            w.AddTensor(t.Name, t.Type, shape, () => bytes);
        }
        w.Write(_dir.Sub(name));
        return _dir.Sub(name);
    }

    [Fact]
    public void Flipped_bytes_never_crash_the_import()
    {
        // Deterministic: every flip either imports or fails with a named ModelFormatException.
        string valid = Valid(GgmlType.Q8_0);
        byte[] bytes = File.ReadAllBytes(valid);
        long dataStart;
        using (var f = GgufFile.Open(valid)) dataStart = f.DataStart;
        var rng = new SplitMix64(7);
        int failures = 0;
        for (int i = 0; i < 150; i++)
        {
            var copy = (byte[])bytes.Clone();
            int at = (int)(rng.Next() % (ulong)dataStart);
            copy[at] ^= (byte)(1 << (int)(rng.Next() % 8));
            string path = _dir.Sub($"flip-{i}.gguf");
            File.WriteAllBytes(path, copy);
            try
            {
                ModelImporter.Import(path, _dir.Sub($"flip-{i}"));
            }
            catch (ModelFormatException e)
            {
                Assert.Equal(path, e.File);
                failures++;
            }
        }
        Assert.True(failures > 10, $"only {failures} of 150 flips were refused");
    }
}
