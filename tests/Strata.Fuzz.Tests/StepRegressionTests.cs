using Strata.Contracts;
using Strata.Engine.Graph;

namespace Strata.Fuzz.Tests;

/// <summary>Steps that used to fail on the stage's batch thread, after the stage ran them, with an untyped error.</summary>
public sealed class StepRegressionTests
{
    private static readonly StageSpec Last = new(2, 4, 4);

    private static StepRequest Valid() =>
        new("s1", 0, 1, null, new byte[8 * 4], "fp32", new SamplingSpec(0.8, 40, 0.95), [1, 2, 3, 4]);

    private static StrataException Refused(StepRequest r, StageSpec? stage = null)
    {
        var e = Assert.Throws<StrataException>(() => StepFuzzTests.Arrive(r, stage ?? Last, ComputeType.Float32));
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.StartsWith("stage 1: ", e.Message, StringComparison.Ordinal);
        return e;
    }

    [Fact]
    public void ValidStepIsAccepted() => StepFuzzTests.Arrive(Valid(), Last, ComputeType.Float32);

    [Fact]
    public void MissingRngStateIsRefusedOnArrival() =>
        // Was a NullReferenceException in the sampler on the batch thread.
        Assert.Contains("RNG state", Refused(Valid() with { RngState = null! }).Message);

    [Fact]
    public void MalformedRngStateIsRefusedOnArrival()
    {
        // A 3-word state was silently replaced by a fixed seed; an all-zero one failed after the stage ran.
        Assert.Contains("3 words", Refused(Valid() with { RngState = [1, 2, 3] }).Message);
        Assert.Contains("not all zero", Refused(Valid() with { RngState = [0, 0, 0, 0] }).Message);
    }

    [Fact]
    public void MissingSamplingIsRefusedOnArrival() =>
        // Was a NullReferenceException in the sampler on the batch thread.
        Assert.Contains("sampling settings", Refused(Valid() with { Sampling = null! }).Message);

    [Fact]
    public void OutOfRangeSamplingIsRefusedOnArrival() =>
        // Was refused only after the stage had run the step.
        Assert.Contains("temperature", Refused(Valid() with { Sampling = new SamplingSpec(double.NaN) }).Message);

    [Fact]
    public void MissingSessionIsRefusedOnArrival() =>
        // Was an ArgumentNullException from the lease table inside the batch loop ("Value cannot be null").
        Assert.Contains("names no session", Refused(Valid() with { SessionId = null! }).Message);

    [Fact]
    public void FillOnlyStepNeedsNoSampling() =>
        StepFuzzTests.Arrive(Valid() with { FillOnly = true, Sampling = null!, RngState = null! }, Last, ComputeType.Float32);
}
