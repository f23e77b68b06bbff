using Strata.Models;

namespace Strata.Fuzz.Tests;

/// <summary>The fuzz harness itself: it must tell a typed rejection from a crash.</summary>
public sealed class HarnessTests
{
    [Fact]
    public void TypedErrorWithAMessagePasses() =>
        Assert.False(Fuzz.Once(() => throw new ModelFormatException("f.json", "x", "bad"), Fuzz.Only<ModelFormatException>()));

    [Fact]
    public void OtherExceptionTypesFail()
    {
        var e = Assert.Throws<FuzzFailure>(() => Fuzz.Once(() => throw new IndexOutOfRangeException(), Fuzz.Only<ModelFormatException>()));
        Assert.Contains("untyped", e.Message);
        Assert.Throws<FuzzFailure>(() => Fuzz.Once(() => throw new ArgumentException("x"), Fuzz.Only<ModelFormatException>()));
    }

    [Fact]
    public void MutatorIsDeterministicAndChangesTheInput()
    {
        string valid = """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":[1,2]}""";
        Assert.Equal(JsonMutator.Mutate(valid, 7), JsonMutator.Mutate(valid, 7));
        Assert.Contains(Enumerable.Range(0, 20), s => JsonMutator.MutateText(valid, s) != valid);
    }
}
