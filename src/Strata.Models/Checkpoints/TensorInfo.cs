namespace Strata.Models.Checkpoints;

/// <summary>Where one stored tensor lives: its file, byte range, element type and shape.</summary>
/// <param name="Name">Tensor name as stored (Hugging Face naming).</param>
/// <param name="DType">Element type as stored.</param>
/// <param name="Shape">Shape, outermost first.</param>
/// <param name="File">Path of the file holding the bytes.</param>
/// <param name="Offset">Absolute byte offset of the first element in <paramref name="File"/>.</param>
/// <param name="ByteLength">Number of bytes.</param>
public sealed record TensorInfo(string Name, TensorDType DType, long[] Shape, string File, long Offset, long ByteLength)
{
    /// <summary>Number of elements (product of the shape).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape written as [a, b].</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
