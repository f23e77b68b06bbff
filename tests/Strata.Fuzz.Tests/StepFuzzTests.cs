using CsCheck;
using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;
using Strata.Grains.Stages;
using Strata.Models.Config;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// The step a shard receives (<see cref="StepRequest"/>), checked on arrival by <see cref="StageWorker.ToJob"/>
/// (which ends in <see cref="StageBatcher.CheckStep"/>) at a first, middle, last and only stage, in fp32 and fp16.
/// Every rejection must be a <see cref="StrataException"/> with code invalid_request that names the stage; an accepted
/// step must be one the batch thread can run without further checks: ids inside the vocabulary, activations of the
/// stage's type and exact byte length, a usable RNG state.
/// </summary>
public sealed class StepFuzzTests(ITestOutputHelper output)
{
    private static readonly LlamaConfig Config = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 8, IntermediateSize = 16, NumLayers = 4, NumHeads = 2, NumKvHeads = 1,
        HeadDim = 4, VocabSize = 32, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000, AttentionBias = false,
        TieWordEmbeddings = true,
    };

    private static readonly StageSpec[] Stages = [new(0, 2, 4), new(1, 3, 4), new(2, 4, 4), new(0, 4, 4)];

    private static readonly Gen<int> Count = Gen.OneOf<int>(Gen.Int[-2, 6], Gen.OneOf<int>(int.MaxValue, int.MinValue, 1 << 20, 1 << 29, 1 << 30));

    private static readonly Gen<StepRequest> Request =
        Gen.Select(Gen.OneOf<string?>("s1", "", null), Count, Count,
            Gen.OneOf<int>(Gen.Int[-3, 40], Gen.OneOf<int>(int.MaxValue, int.MinValue, 31, 32)).Array[0, 6].Null(),
            Gen.Select(Gen.Int[0, 4], Gen.Int[0, 70], (mode, n) => mode == 0 ? null : new byte[mode == 1 ? n : n * 8 * (mode == 2 ? 4 : 2)]),
            Gen.OneOf<string?>("fp32", "fp16", "int8", "", null, "FP32"),
            Gen.Select(Gen.OneOf<double>(0, 0.7, 1, -1, double.NaN, double.PositiveInfinity), Gen.Int[-2, 50], Gen.OneOf<double>(1, 0.5, 0, 1.5, double.NaN),
                (t, k, p) => new SamplingSpec(t, k, p)).Null(),
            Gen.OneOf<ulong[]?>(null, [], [1, 2, 3, 4], [0, 0, 0, 0], [1, 2, 3], [1, 2, 3, 4, 5]))
        .Select(Gen.Bool, (t, fillOnly) => new StepRequest(t.Item1!, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6!, t.Item7!, t.Item8!, 0, fillOnly));

    // Mostly well-formed steps with one field off, so the later checks are reached too.
    private static readonly Gen<StepRequest> NearlyValid =
        Gen.Select(Gen.Int[1, 9], Gen.Int[0, 40], Gen.Bool, Gen.Int[0, 8], Gen.Int[-3, 3], Gen.Int)
        .Select((tokens, past, fp16, field, delta, id) =>
        {
            var r = new StepRequest("s1", past, tokens, Enumerable.Repeat(3, tokens).ToArray(), new byte[tokens * 8 * (fp16 ? 2 : 4)],
                fp16 ? "fp16" : "fp32", new SamplingSpec(0.8, 40, 0.95), [1, 2, 3, 4]);
            return field switch
            {
                0 => r with { TokenCount = tokens + delta },
                1 => r with { PastLength = past * delta - 1 },
                2 => r with { Tokens = [.. r.Tokens!.SkipLast(1), id] },
                3 => r with { Hidden = new byte[Math.Max(0, r.Hidden!.Length + delta)] },
                4 => r with { HiddenType = fp16 ? "fp32" : "fp16" },
                5 => r with { Sampling = new SamplingSpec(delta, delta, delta / 2.0) },
                6 => r with { RngState = [.. Enumerable.Repeat(0UL, Math.Abs(delta) + 1)] },
                _ => r,
            };
        });

    [Fact]
    public void ArrivingStepsAreQueuedOrRefusedTyped()
    {
        var gen = Gen.Frequency((1, Request), (1, NearlyValid)).Select(Gen.Int[0, Stages.Length - 1], Gen.Bool, (r, stage, fp16) => (r, Stages[stage], fp16 ? ComputeType.Float16 : ComputeType.Float32));
        Fuzz.Check(output, "step at a shard", gen, c => Arrive(c.r, c.Item2, c.Item3), Typed, cases: 3000,
            print: c => $"{c.Item2} {c.Item3}: {Show(c.r)}");
    }

    internal static StepJob Arrive(StepRequest r, StageSpec stage, ComputeType compute)
    {
        RowSampler? sample = stage.IsLast && !r.FillOnly ? (_, _) => 0 : null;
        var job = StageWorker.ToJob(r, stage, Config, compute, stageIndex: 1, sample);
        if (job.TokenCount < 1 || job.PastLength < 0 || string.IsNullOrEmpty(job.SessionId))
            throw new FuzzFailure("accepted an empty step, a negative position or no session");
        if (stage.IsFirst && (job.Tokens is null || job.Tokens.Length != job.TokenCount || job.Tokens.Any(id => (uint)id >= Config.VocabSize)))
            throw new FuzzFailure("accepted token ids that do not match the step or the vocabulary");
        if (!stage.IsFirst && (job.Hidden is not { } h || h.Type != compute || h.Rows != 1 || h.Tokens != job.TokenCount
            || h.Data.LongLength != (long)job.TokenCount * Config.HiddenSize * Activations.ElementSize(compute)))
            throw new FuzzFailure("accepted activations that do not match the step");
        if (sample is not null && (r.Sampling is null || r.RngState is not ({ Length: 0 } or { Length: Xoshiro256StarStar.StateLength })))
            throw new FuzzFailure("accepted a sampling step without usable sampling settings or RNG state");
        return job;
    }

    private static readonly Func<Exception, string?> Typed = Fuzz.Only<StrataException>(e =>
        e.Code != ErrorCodes.InvalidRequest ? $"code {e.Code}, not invalid_request"
        : !e.Message.StartsWith("stage 1: ", StringComparison.Ordinal) ? "the error does not name the stage"
        : null);

    private static string Show(StepRequest r) =>
        $"session={r.SessionId ?? "null"} past={r.PastLength} tokens={r.TokenCount} ids=[{(r.Tokens is null ? "null" : string.Join(",", r.Tokens))}] " +
        $"hidden={(r.Hidden is null ? "null" : r.Hidden.Length + " bytes")} type={r.HiddenType ?? "null"} sampling={r.Sampling?.ToString() ?? "null"} " +
        $"rng={(r.RngState is null ? "null" : r.RngState.Length + " words")} fillOnly={r.FillOnly}";
}
