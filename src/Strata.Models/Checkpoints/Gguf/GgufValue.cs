namespace Strata.Models.Checkpoints.Gguf;

/// <summary>The value types of GGUF metadata (<c>gguf_type</c> numbering).</summary>
public enum GgufValueType : uint
{
    /// <summary>uint8.</summary>
    UInt8 = 0,
    /// <summary>int8.</summary>
    Int8 = 1,
    /// <summary>uint16.</summary>
    UInt16 = 2,
    /// <summary>int16.</summary>
    Int16 = 3,
    /// <summary>uint32.</summary>
    UInt32 = 4,
    /// <summary>int32.</summary>
    Int32 = 5,
    /// <summary>float32.</summary>
    Float32 = 6,
    /// <summary>bool (one byte, 0 or 1).</summary>
    Bool = 7,
    /// <summary>UTF-8 string: uint64 length, bytes.</summary>
    String = 8,
    /// <summary>Array: uint32 element type, uint64 count, elements.</summary>
    Array = 9,
    /// <summary>uint64.</summary>
    UInt64 = 10,
    /// <summary>int64.</summary>
    Int64 = 11,
    /// <summary>float64.</summary>
    Float64 = 12,
}

/// <summary>
/// One metadata value of a GGUF file. Scalars are held as their CLR type (<see cref="uint"/>, <see cref="float"/>,
/// <see cref="string"/>, ...); arrays as a CLR array of the element type (<c>string[]</c>, <c>float[]</c>, <c>int[]</c>,
/// ...; an array of arrays as <c>GgufValue[]</c>).
/// </summary>
/// <param name="Type">The stored type.</param>
/// <param name="Value">The value.</param>
/// <param name="ElementType">For arrays, the element type; else <paramref name="Type"/>.</param>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType)
{
    /// <summary>A scalar value.</summary>
    public static GgufValue Of(GgufValueType type, object value) => new(type, value, type);

    /// <summary>An array value.</summary>
    public static GgufValue ArrayOf(GgufValueType elementType, Array values) => new(GgufValueType.Array, values, elementType);

    /// <summary>The value as an integer when it is one of the integer types.</summary>
    public long? AsInteger() => Value switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, long v => v,
        ulong v => v <= long.MaxValue ? (long)v : null,
        _ => null,
    };

    /// <summary>The value as a double when it is a number.</summary>
    public double? AsNumber() => Value switch
    {
        float f => f,
        double d => d,
        _ => AsInteger(),
    };

    /// <summary>The type as the GGUF specification spells it, for errors.</summary>
    public string TypeName => Type == GgufValueType.Array ? $"array of {ElementType}" : Type.ToString();
}
