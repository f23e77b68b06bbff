using Strata.Contracts;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;
using Strata.Grains.Stages;
using Strata.Models.Config;

namespace Strata.Fuzz.Tests;

public sealed class StepFuzzTests
{
    private static readonly LlamaConfig Config = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 8, IntermediateSize = 16, NumLayers = 4, NumHeads = 2, NumKvHeads = 1,
        HeadDim = 4, VocabSize = 32, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000, AttentionBias = false,
        TieWordEmbeddings = true,
    };

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
}
