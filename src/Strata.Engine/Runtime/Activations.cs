using Strata.Engine.Graph;

namespace Strata.Engine.Runtime;

/// <summary>
/// Hidden states passed from one stage to the next: [rows, tokens, hidden] elements of <see cref="Type"/>, as raw
/// little-endian bytes (the form they cross the network in).
/// </summary>
/// <param name="Type">Element type.</param>
/// <param name="Rows">Batch rows.</param>
/// <param name="Tokens">New tokens per row.</param>
/// <param name="Hidden">Model width.</param>
/// <param name="Data">Rows * Tokens * Hidden elements.</param>
public sealed record Activations(ComputeType Type, int Rows, int Tokens, int Hidden, byte[] Data)
{
    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(ComputeType type) => type == ComputeType.Float16 ? 2 : 4;

    /// <summary>These activations as <paramref name="type"/>: itself when it already is, else a converted copy (fp16
    /// and fp32 convert both ways, so stages of a chain may run in different types: a GPU stage in fp16 feeding a
    /// CPU stage in fp32). Throws <see cref="ArgumentException"/> when the buffer does not match the shape.</summary>
    public Activations ConvertTo(ComputeType type)
    {
        if (type == Type) return this;
        long elements = (long)Rows * Tokens * Hidden;
        if (Rows < 1 || Tokens < 1 || Data.Length != elements * ElementSize(Type))
            throw new ArgumentException($"activations hold {Data.Length} bytes but shape [{Rows}, {Tokens}, {Hidden}] of {Type} needs {elements * ElementSize(Type)}");
        var data = new byte[elements * ElementSize(type)];
        if (type == ComputeType.Float32)
        {
            var from = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(Data);
            var to = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data.AsSpan());
            for (int i = 0; i < from.Length; i++) to[i] = (float)from[i];
        }
        else
        {
            var from = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data);
            var to = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(data.AsSpan());
            for (int i = 0; i < from.Length; i++) to[i] = (Half)from[i];
        }
        return this with { Type = type, Data = data };
    }

    /// <summary>Throws <see cref="ArgumentException"/> when the buffer does not match the declared shape or the
    /// expected type and width.</summary>
    public void Validate(ComputeType expectedType, int expectedHidden)
    {
        if (Type != expectedType)
            throw new ArgumentException($"activations are {Type} but this stage computes in {expectedType}");
        if (Hidden != expectedHidden)
            throw new ArgumentException($"activations have hidden size {Hidden} but the model has {expectedHidden}");
        if (Rows < 1 || Tokens < 1)
            throw new ArgumentException($"activations have an empty shape [{Rows}, {Tokens}, {Hidden}]");
        long expected = (long)Rows * Tokens * Hidden * ElementSize(Type);
        if (Data.Length != expected)
            throw new ArgumentException($"activations hold {Data.Length} bytes but shape [{Rows}, {Tokens}, {Hidden}] of {Type} needs {expected}");
    }
}
