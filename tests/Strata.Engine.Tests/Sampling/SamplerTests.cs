using Strata.Engine.Sampling;

namespace Strata.Engine.Tests.Sampling;

public sealed class SamplerTests
{
    // A flat-ish distribution over 16 tokens: different seeds should soon pick differently.
    private static readonly float[] Flat = [.. Enumerable.Range(0, 16).Select(i => 0.05f * (i % 5))];
    // A peaked one with a clear order: token 7 best, then 3, then 11, then the rest.
    private static readonly float[] Peaked = MakePeaked();

    private static float[] MakePeaked()
    {
        var l = new float[32];
        for (int i = 0; i < l.Length; i++) l[i] = -1f - 0.01f * i;
        l[7] = 3f;
        l[3] = 2.5f;
        l[11] = 2f;
        return l;
    }

    private static int[] Draw(SamplingParams p, float[] logits, int count)
    {
        var sampler = new Sampler(p);
        return [.. Enumerable.Range(0, count).Select(_ => sampler.Sample(logits))];
    }

    [Fact]
    public void Same_seed_gives_same_tokens_and_different_seeds_differ()
    {
        var p = new SamplingParams { Seed = 42 };
        Assert.Equal(Draw(p, Flat, 50), Draw(p, Flat, 50));
        Assert.NotEqual(Draw(p, Flat, 50), Draw(p with { Seed = 43 }, Flat, 50));
    }

    [Fact]
    public void Unseeded_sampler_reports_the_seed_it_chose()
    {
        var sampler = new Sampler(new SamplingParams());
        var replay = new Sampler(new SamplingParams { Seed = sampler.Seed });
        for (int i = 0; i < 20; i++) Assert.Equal(sampler.Sample(Flat), replay.Sample(Flat));
    }

    [Fact]
    public void Saved_state_replays_the_same_tokens()
    {
        var sampler = new Sampler(new SamplingParams { Seed = 9 });
        for (int i = 0; i < 5; i++) sampler.Sample(Flat);
        ulong[] state = sampler.GetState();
        int[] expected = [.. Enumerable.Range(0, 20).Select(_ => sampler.Sample(Flat))];

        var restored = new Sampler(new SamplingParams { Seed = 1 });
        restored.SetState(state);
        Assert.Equal(expected, Enumerable.Range(0, 20).Select(_ => restored.Sample(Flat)));
    }

    [Fact]
    public void Greedy_picks_the_argmax_with_ties_to_the_lowest_id()
    {
        Assert.All(Draw(SamplingParams.Greedy, Peaked, 5), t => Assert.Equal(7, t));
        Assert.Equal(2, Sampler.ArgMax([0f, 1f, 5f, 5f, float.NaN]));
        Assert.Equal(1, Sampler.ArgMax([float.NaN, 1f]));
    }

    [Theory]
    [InlineData(1, 1.0)]      // top-k 1
    [InlineData(0, 1e-9)]     // tiny top-p
    [InlineData(5, 1e-9)]
    public void Cuts_to_one_token_equal_greedy(int topK, double topP)
    {
        var p = new SamplingParams { TopK = topK, TopP = topP, Seed = 3, Temperature = 5 };
        Assert.All(Draw(p, Peaked, 200), t => Assert.Equal(7, t));
        float[] tied = [1f, 4f, 0f, 4f];
        Assert.All(Draw(p, tied, 50), t => Assert.Equal(1, t));
    }

    [Fact]
    public void Top_k_restricts_the_support_to_the_k_best()
    {
        var rng = new System.Random(1);
        float[] logits = [.. Enumerable.Range(0, 1000).Select(_ => (float)rng.NextDouble())];
        var best = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(10).Select(x => x.i).ToHashSet();

        int[] draws = Draw(new SamplingParams { TopK = 10, Seed = 11, Temperature = 2 }, logits, 2000);
        Assert.All(draws, t => Assert.Contains(t, best));
        Assert.Equal(10, draws.Distinct().Count()); // flat enough that all ten show up
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        // Probabilities 0.5, 0.3, 0.15, 0.05: p = 0.8 keeps the first two; p = 0.81 keeps three.
        float[] logits = [MathF.Log(0.15f), MathF.Log(0.5f), MathF.Log(0.05f), MathF.Log(0.3f)];
        var two = Draw(new SamplingParams { TopP = 0.8, Seed = 5 }, logits, 2000).ToHashSet();
        Assert.Equal([1, 3], two.Order());
        var three = Draw(new SamplingParams { TopP = 0.81, Seed = 5 }, logits, 2000).ToHashSet();
        Assert.Equal([0, 1, 3], three.Order());
    }

    [Fact]
    public void Draw_frequencies_follow_the_softmax()
    {
        float[] logits = [0f, MathF.Log(3f)]; // 1 : 3
        int ones = Draw(new SamplingParams { Seed = 17 }, logits, 4000).Count(t => t == 1);
        Assert.InRange(ones / 4000.0, 0.72, 0.78);
    }

    [Fact]
    public void Temperature_extremes_are_greedy_or_uniform()
    {
        Assert.All(Draw(new SamplingParams { Temperature = 1e-30, Seed = 1 }, Peaked, 200), t => Assert.Equal(7, t));
        Assert.All(Draw(new SamplingParams { Temperature = double.Epsilon, Seed = 1 }, Peaked, 50), t => Assert.Equal(7, t));

        int[] draws = Draw(new SamplingParams { Temperature = 1e30, Seed = 1 }, Peaked, 3200);
        var counts = draws.GroupBy(t => t).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(32, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 50, 150)); // about 100 each
    }

    [Fact]
    public void Masked_and_nan_logits_are_never_drawn()
    {
        float[] logits = [float.NegativeInfinity, 0f, float.NaN, 0f, float.NegativeInfinity];
        var seen = Draw(new SamplingParams { Seed = 2 }, logits, 500).ToHashSet();
        Assert.Equal([1, 3], seen.Order());
        Assert.Throws<ArgumentException>(() => new Sampler(new SamplingParams()).Sample([float.NegativeInfinity]));
    }

    [Fact]
    public void Large_vocabulary_with_top_p_and_top_k()
    {
        var rng = new System.Random(4);
        float[] logits = [.. Enumerable.Range(0, 128_256).Select(_ => (float)(rng.NextDouble() * 8))];
        var sampler = new Sampler(new SamplingParams { TopP = 0.9, TopK = 50, Seed = 8 });
        int argmax = Sampler.ArgMax(logits);
        var top50 = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).ThenBy(x => x.i).Take(50).Select(x => x.i).ToHashSet();
        Assert.Contains(argmax, top50);
        for (int i = 0; i < 20; i++) Assert.Contains(sampler.Sample(logits), top50);

        var nucleusOnly = new Sampler(new SamplingParams { TopP = 0.5, Seed = 8 });
        for (int i = 0; i < 5; i++) Assert.InRange(nucleusOnly.Sample(logits), 0, logits.Length - 1);
    }

    [Fact]
    public void Sampling_reuses_its_buffers()
    {
        var rng = new System.Random(6);
        float[] logits = [.. Enumerable.Range(0, 32_000).Select(_ => (float)(rng.NextDouble() * 8))];
        var sampler = new Sampler(new SamplingParams { TopK = 40, TopP = 0.95, Seed = 1 });
        sampler.Sample(logits);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) sampler.Sample(logits);
        long perCall = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        Assert.True(perCall < 1024, $"{perCall} bytes allocated per call");
    }
}
