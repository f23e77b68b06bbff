using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;
using Strata.Engine.Tests.Reference;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Serving;

public sealed class StageBatcherTests
{
    private static readonly LlamaConfig Config = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 32, IntermediateSize = 48, NumLayers = 4, NumHeads = 2,
        NumKvHeads = 1, HeadDim = 16, VocabSize = 64, MaxPositionEmbeddings = 128, RmsNormEps = 1e-5, RopeTheta = 10000,
        AttentionBias = false, TieWordEmbeddings = true,
    };

    private const int MaxContext = 64;

    /// <summary>Stages of one model, each with its own KV pool and batcher, stepped like the shard chain.</summary>
    private sealed class Chain : IDisposable
    {
        private readonly List<IDisposable> _owned = [];

        public Chain(MemoryTensorSource weights, int stages, int slots, BatcherOptions options)
        {
            foreach (var spec in StageSpec.Even(Config.NumLayers, stages))
            {
                var runtime = StageRuntime.Load(Config, weights, spec, new EngineOptions { MaxContext = MaxContext, IntraOpThreads = 1 });
                var pool = runtime.CreateKvPool(slots);
                var batcher = new StageBatcher(runtime, pool, options);
                _owned.AddRange([runtime, pool, batcher]);
                Batchers.Add(batcher);
            }
        }

        public List<StageBatcher> Batchers { get; } = [];
        public ConcurrentBag<int> BatchRows { get; } = [];

        public async Task Reserve(string session)
        {
            foreach (var b in Batchers) await b.ReserveAsync(session);
        }

        public void Release(string session)
        {
            foreach (var b in Batchers) b.Leases.Release(session);
        }

        /// <summary>One step through every stage; returns the greedy token.</summary>
        public async Task<int> Step(string session, int past, int[] tokens, RowSampler? sample = null)
        {
            Activations? hidden = null;
            StepOutcome outcome = null!;
            foreach (var b in Batchers)
            {
                bool first = b == Batchers[0], last = b == Batchers[^1];
                outcome = await b.StepAsync(new StepJob
                {
                    SessionId = session, PastLength = past, TokenCount = tokens.Length,
                    Tokens = first ? tokens : null, Hidden = first ? null : hidden,
                    Sample = last ? sample ?? ((logits, _) => Sampler.ArgMax(logits)) : null,
                });
                hidden = outcome.Hidden;
                if (tokens.Length == 1) BatchRows.Add(outcome.BatchRows);
            }
            return outcome.Token;
        }

        /// <summary>Admits the session, generates greedily, releases.</summary>
        public async Task<int[]> Generate(string session, int[] prompt, int newTokens)
        {
            await Reserve(session);
            try
            {
                var generated = new List<int>();
                int past = 0;
                int[] pending = prompt;
                for (int i = 0; i < newTokens; i++)
                {
                    int token = await Step(session, past, pending);
                    past += pending.Length;
                    pending = [token];
                    generated.Add(token);
                }
                return generated.ToArray();
            }
            finally
            {
                Release(session);
            }
        }

        public void Dispose()
        {
            for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        }
    }

    private static int[] Alone(MemoryTensorSource weights, int[] prompt, int newTokens)
    {
        using var pipeline = LocalPipeline.Load(Config, weights, 1, new EngineOptions { MaxContext = MaxContext, IntraOpThreads = 1 });
        using var seq = pipeline.NewSequence();
        var generated = new List<int>();
        var logits = seq.Forward(prompt);
        for (int i = 0; i < newTokens; i++)
        {
            int token = Sampler.ArgMax(logits);
            generated.Add(token);
            if (i < newTokens - 1) logits = seq.Forward([token]);
        }
        return generated.ToArray();
    }

    private static int[] Prompt(int session, int length) => Enumerable.Range(0, length).Select(j => (session * 7 + j * 3 + 1) % Config.VocabSize).ToArray();

    [Theory]
    [InlineData(16, 16)] // every session has a slot: one batch of up to 16 rows
    [InlineData(6, 16)]  // 6 slots for 16 sessions: the rest wait, slots are reused, batches have gaps (padding rows)
    public async Task Batched_generation_equals_each_session_alone_for_16_sessions_with_different_prompt_lengths(int slots, int sessions)
    {
        using var w = MemoryTensorSource.Random(Config, seed: 11);
        int[][] prompts = Enumerable.Range(0, sessions).Select(i => Prompt(i, 1 + (i * 5) % 23)).ToArray();
        int[] lengths = Enumerable.Range(0, sessions).Select(i => 6 + i % 7).ToArray();
        var expected = prompts.Select((p, i) => Alone(w, p, lengths[i])).ToArray();

        using var chain = new Chain(w, stages: 2, slots, new BatcherOptions { PrefillChunk = 8 });
        var results = await Task.WhenAll(prompts.Select((p, i) => Task.Run(() => chain.Generate($"s{i}", p, lengths[i]))))
            .WaitAsync(TimeSpan.FromMinutes(2));

        for (int i = 0; i < sessions; i++) Assert.Equal(expected[i], results[i]);
        Assert.True(chain.BatchRows.Max() > 1, "no decode step ran in a batch of more than one session");
        Assert.All(chain.Batchers, b => Assert.Equal(0, b.Leases.Used));
    }

    [Fact]
    public async Task Idle_slots_inside_a_batch_run_as_padding_without_touching_their_sessions_cache()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 5);
        using var chain = new Chain(w, stages: 1, slots: 4, new BatcherOptions());
        var batcher = chain.Batchers[0];
        int[] pa = Prompt(1, 5), pb = Prompt(2, 9), pc = Prompt(3, 3);
        foreach (var s in new[] { "a", "b", "c" }) await chain.Reserve(s);
        Assert.Equal([0, 1, 2], new[] { "a", "b", "c" }.Select(s => batcher.Leases.TryGet(s, out var l) ? l.Slot : -1));

        int ta = await chain.Step("a", 0, pa), tb = await chain.Step("b", 0, pb), tc = await chain.Step("c", 0, pc);

        // Hold the batch thread inside a sampler so that a's and c's decode steps queue up together; b (slot 1, between
        // them) is idle and runs as a padding row.
        using var gate = new ManualResetEventSlim();
        using var d = await Reserved(chain, "d");
        var held = chain.Step("d", 0, [1, 2], (logits, _) => { gate.Wait(); return Sampler.ArgMax(logits); });
        var stepA = batcher.StepAsync(Decode("a", pa.Length, ta));
        var stepC = batcher.StepAsync(Decode("c", pc.Length, tc));
        gate.Set();
        await held;
        var (oa, oc) = (await stepA, await stepC);
        Assert.Equal(2, oa.BatchRows);
        Assert.Equal(2, oc.BatchRows);

        // b continues as if nothing ran in its slot; a and c match running alone.
        int tb2 = await chain.Step("b", pb.Length, [tb]);
        Assert.Equal(Alone(w, pb, 2), new[] { tb, tb2 });
        Assert.Equal(Alone(w, pa, 2), new[] { ta, oa.Token });
        Assert.Equal(Alone(w, pc, 2), new[] { tc, oc.Token });
    }

    [Theory]
    [InlineData(1, new[] { 8 })]    // one stage: every waiting step in one run
    [InlineData(2, new[] { 5, 3 })] // a stage of two: its share of the 9 sessions holding a slot (5), then the rest
    public async Task In_a_pipeline_a_stage_runs_its_share_of_the_sessions_per_decode_run_and_the_rest_next(int depth, int[] expectedRuns)
    {
        using var w = MemoryTensorSource.Random(Config, seed: 13);
        var runs = new ConcurrentQueue<(int Rows, int Tokens)>();
        using var chain = new Chain(w, stages: 1, slots: 10, new BatcherOptions { PipelineDepth = depth, OnRun = (rows, tokens) => runs.Enqueue((rows, tokens)) });
        var batcher = chain.Batchers[0];
        string[] sessions = Enumerable.Range(0, 8).Select(i => $"s{i}").ToArray();
        var prompts = sessions.Select((_, i) => Prompt(i, 2 + i)).ToArray();
        var first = new int[sessions.Length];
        for (int i = 0; i < sessions.Length; i++)
        {
            await chain.Reserve(sessions[i]);
            first[i] = await chain.Step(sessions[i], 0, prompts[i]);
        }

        // Hold the batch thread so that all eight decode steps are waiting when it next forms a run.
        using var gate = new ManualResetEventSlim();
        using var holder = await Reserved(chain, "holder");
        var held = chain.Step("holder", 0, [1, 2], (logits, _) => { gate.Wait(); return Sampler.ArgMax(logits); });
        var steps = sessions.Select((s, i) => batcher.StepAsync(Decode(s, prompts[i].Length, first[i]))).ToArray();
        runs.Clear();
        gate.Set();
        await held;
        var outcomes = await Task.WhenAll(steps).WaitAsync(TimeSpan.FromMinutes(1));

        Assert.Equal(expectedRuns, runs.Where(r => r.Tokens == 1).Select(r => r.Rows).ToArray());
        for (int i = 0; i < sessions.Length; i++) Assert.Equal(Alone(w, prompts[i], 2), new[] { first[i], outcomes[i].Token });
    }

    [Fact]
    public async Task A_step_that_arrives_before_the_one_it_follows_waits_for_it_and_one_whose_predecessor_never_comes_fails_as_lost_kv()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 17);
        using var chain = new Chain(w, stages: 1, slots: 2, new BatcherOptions { EarlyStepWait = TimeSpan.FromMilliseconds(300) });
        var batcher = chain.Batchers[0];
        await chain.Reserve("s");
        int[] prompt = Prompt(4, 10);
        StepJob Part(int from, int count, bool sample) => new()
        {
            SessionId = "s", PastLength = from, TokenCount = count, Tokens = prompt[from..(from + count)],
            Sample = sample ? (logits, _) => Sampler.ArgMax(logits) : null,
        };

        // The second half of the prompt first: it waits until the first half has filled positions 0-5.
        var second = batcher.StepAsync(Part(6, 4, sample: true));
        var first = batcher.StepAsync(Part(0, 6, sample: false));
        await first.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.Equal(Alone(w, prompt, 1)[0], (await second.WaitAsync(TimeSpan.FromMinutes(1))).Token);

        // A step past what the stage holds whose predecessor never comes fails, once it has waited long enough.
        await Assert.ThrowsAsync<KvLostException>(() => batcher.StepAsync(Decode("s", prompt.Length + 2, 1)).WaitAsync(TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public async Task A_sessions_kv_copied_to_another_stage_of_the_same_layers_continues_exactly_and_bad_copies_are_refused()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 19);
        using var from = new Chain(w, stages: 2, slots: 3, new BatcherOptions());
        using var to = new Chain(w, stages: 2, slots: 3, new BatcherOptions());
        int[] prompt = Prompt(5, 11);
        await from.Reserve("s");
        int first = await from.Step("s", 0, prompt);
        int second = await from.Step("s", prompt.Length, [first]);

        // Another session holds slot 0 of the target, so the copy lands in another slot than it came from.
        await to.Reserve("other");
        await to.Reserve("s");
        int held = prompt.Length + 1;
        for (int i = 0; i < 2; i++)
        {
            // In two chunks, as the grain copies a long cache.
            var head = await from.Batchers[i].ExportKvAsync("s", 0, 7);
            var tail = await from.Batchers[i].ExportKvAsync("s", 7, held - 7);
            Assert.Equal(7, await to.Batchers[i].ImportKvAsync("s", 0, 0, head));
            Assert.Equal(held, await to.Batchers[i].ImportKvAsync("s", 0, 7, tail));
        }
        int third = await to.Step("s", held, [second]);
        Assert.Equal(Alone(w, prompt, 3), new[] { first, second, third });

        // Positions it does not hold, a chunk that does not start where the cache ends, another turn's slot.
        await Assert.ThrowsAsync<KvLostException>(() => from.Batchers[0].ExportKvAsync("s", 0, held + 1));
        var chunk = await from.Batchers[0].ExportKvAsync("s", 0, 2);
        await Assert.ThrowsAsync<KvLostException>(() => to.Batchers[0].ImportKvAsync("other", 0, 3, chunk));
        await Assert.ThrowsAsync<KvLostException>(() => to.Batchers[0].ImportKvAsync("other", 5, 0, chunk));
        await Assert.ThrowsAsync<KvLostException>(() => to.Batchers[0].ImportKvAsync("nobody", 0, 0, chunk));
        await Assert.ThrowsAsync<ArgumentException>(() => to.Batchers[0].ImportKvAsync("other", 0, 0, chunk[..^1]));
    }

    private static StepJob Decode(string session, int past, int token) => new()
    {
        SessionId = session, PastLength = past, TokenCount = 1, Tokens = [token], Sample = (logits, _) => Sampler.ArgMax(logits),
    };

    private static async Task<IDisposable> Reserved(Chain chain, string session)
    {
        await chain.Reserve(session);
        return new Releaser(() => chain.Release(session));
    }

    private sealed class Releaser(Action release) : IDisposable
    {
        public void Dispose() => release();
    }

    [Fact]
    public async Task Decode_steps_run_between_the_chunks_of_a_long_prefill()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 9);
        var runs = new ConcurrentQueue<(int Rows, int Tokens)>();
        Action? onFirstChunk = null;
        using var chain = new Chain(w, stages: 1, slots: 2, new BatcherOptions
        {
            PrefillChunk = 4,
            OnRun = (rows, tokens) =>
            {
                runs.Enqueue((rows, tokens));
                if (tokens > 1) Interlocked.Exchange(ref onFirstChunk, null)?.Invoke();
            },
        });
        var batcher = chain.Batchers[0];
        await chain.Reserve("short");
        await chain.Reserve("long");
        int[] shortPrompt = Prompt(1, 3), longPrompt = Prompt(2, 40);
        int t0 = await chain.Step("short", 0, shortPrompt);
        runs.Clear();

        // Once the 40-token prompt's first chunk has run, a decode step arrives: it must run in the next turn,
        // between chunks, not after the whole prompt.
        Task<StepOutcome>? decode = null;
        onFirstChunk = () => decode = batcher.StepAsync(Decode("short", shortPrompt.Length, t0));
        var prefill = await batcher.StepAsync(new StepJob
        {
            SessionId = "long", PastLength = 0, TokenCount = 40, Tokens = longPrompt, Sample = (l, _) => Sampler.ArgMax(l),
        });
        var decoded = await decode!;

        var sequence = runs.ToArray();
        Assert.Equal(11, sequence.Length);                        // 10 chunks of 4 tokens and one decode run
        Assert.Equal((1, 1), sequence[1]);                        // the decode run, right after the first chunk
        Assert.All(sequence.Where((_, i) => i != 1), r => Assert.Equal((1, 4), r));
        Assert.Equal(Alone(w, longPrompt, 1)[0], prefill.Token);
        Assert.Equal(Alone(w, shortPrompt, 2)[1], decoded.Token);
    }

    [Fact]
    public async Task Steps_of_one_session_stay_in_order_and_bad_steps_fail_alone()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 3);
        using var chain = new Chain(w, stages: 1, slots: 2, new BatcherOptions());
        var batcher = chain.Batchers[0];
        await chain.Reserve("s");
        int[] prompt = Prompt(4, 6);
        // Both steps are queued at once; the second depends on the first having cached 6 positions.
        var first = batcher.StepAsync(new StepJob { SessionId = "s", PastLength = 0, TokenCount = 6, Tokens = prompt, Sample = (l, _) => Sampler.ArgMax(l) });
        var second = batcher.StepAsync(Decode("s", 6, 5));
        var orphan = batcher.StepAsync(Decode("nobody", 0, 5));
        var ahead = batcher.StepAsync(Decode("s", 99, 5));
        await first;
        Assert.Equal(Alone(w, [.. prompt, 5], 1)[0], (await second).Token);
        var e = await Assert.ThrowsAsync<KvLostException>(() => orphan);
        Assert.Contains("holds no KV slot", e.Message);
        var e2 = await Assert.ThrowsAsync<KvLostException>(() => ahead);
        Assert.Contains("position 99", e2.Message);
        await Assert.ThrowsAsync<ContextOverflowException>(() => batcher.StepAsync(new StepJob
        {
            SessionId = "s", PastLength = 7, TokenCount = MaxContext, Tokens = new int[MaxContext], Sample = (l, _) => 0,
        }));
        var bad = Decode("s", 7, Config.VocabSize);
        Assert.Throws<ArgumentException>(() => { _ = batcher.StepAsync(bad); });
    }

    [Fact]
    public async Task Stage_metrics_report_batch_sizes_queue_depth_and_kv_use()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 13);
        var tags = new KeyValuePair<string, object?>[] { new("model", "metrics-test"), new("stage", 0) };
        using var chain = new Chain(w, stages: 1, slots: 5, new BatcherOptions { Tags = tags });
        var batchSizes = new ConcurrentBag<int>();
        var gauges = new ConcurrentDictionary<string, double>();
        var sums = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (i, l) => { if (i.Meter.Name == StrataMetrics.MeterName) l.EnableMeasurementEvents(i); };
        bool Mine(ReadOnlySpan<KeyValuePair<string, object?>> t)
        {
            foreach (var kv in t) if (kv.Key == "model" && (string?)kv.Value == "metrics-test") return true;
            return false;
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => { if (Mine(t)) sums.AddOrUpdate(i.Name, v, (_, old) => old + v); });
        listener.SetMeasurementEventCallback<int>((i, v, t, _) =>
        {
            if (!Mine(t)) return;
            if (i.Name == "strata_stage_batch_size") batchSizes.Add(v);
            else gauges[i.Name] = v;
        });
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => { if (Mine(t)) gauges[i.Name] = v; });
        listener.Start();

        // Four sessions prefill (4 tokens each); then, with the batch thread held by a fifth session's sampler,
        // all four queue a decode step, which run as one batch of 4 once it is let go.
        var batcher = chain.Batchers[0];
        var next = new int[4];
        for (int i = 0; i < 4; i++)
        {
            await chain.Reserve($"m{i}");
            next[i] = await chain.Step($"m{i}", 0, Prompt(i, 4));
        }
        using var gate = new ManualResetEventSlim();
        await chain.Reserve("holder");
        var held = chain.Step("holder", 0, [1, 2], (logits, _) => { gate.Wait(); return 0; }); // a prefill: never in the decode batch
        var decodes = Enumerable.Range(0, 4).Select(i => batcher.StepAsync(Decode($"m{i}", 4, next[i]))).ToArray();
        gate.Set();
        await held;
        await Task.WhenAll(decodes);
        foreach (var s in new[] { "m0", "m1", "m2", "holder" }) chain.Release(s);
        listener.RecordObservableInstruments();

        Assert.Contains(4, batchSizes);
        Assert.Equal(4 * 4 + 2 + 4, sums["strata_stage_tokens_total"]); // four prompts, the holder's, one decode batch
        Assert.Equal(5, sums["strata_requests_admitted_total"]);
        Assert.Equal(0.2, gauges["strata_kv_cache_usage_perc"]); // m3 still holds one of the 5 slots
        Assert.Equal(1, gauges["strata_num_requests_running"]);
        Assert.Equal(0, gauges["strata_num_requests_waiting"]);
        Assert.Equal(0, gauges["strata_stage_queue_depth"]);
        Assert.Equal(0, sums["strata_kv_evictions_total"]); // observed (published), none evicted here
        Assert.True(gauges.ContainsKey("strata_stage_step_seconds"));
    }

    [Fact]
    public async Task A_step_of_another_turn_is_refused_as_stale()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 17);
        using var chain = new Chain(w, stages: 1, slots: 1, new BatcherOptions());
        var batcher = chain.Batchers[0];
        await batcher.ReserveAsync("s", epoch: 2);
        var stale = batcher.StepAsync(new StepJob
        {
            SessionId = "s", PastLength = 0, TokenCount = 2, Tokens = [1, 2], Epoch = 1, Sample = (l, _) => 0,
        });
        Assert.Contains("turn 1", (await Assert.ThrowsAsync<KvLostException>(() => stale)).Message);
        var current = await batcher.StepAsync(new StepJob
        {
            SessionId = "s", PastLength = 0, TokenCount = 2, Tokens = [1, 2], Epoch = 2, Sample = (l, _) => Sampler.ArgMax(l),
        });
        Assert.Equal(Alone(w, [1, 2], 1)[0], current.Token);
    }

    [Fact]
    public async Task Disposing_fails_queued_steps_and_waiting_reservations_and_refuses_new_steps()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 19);
        using var runtime = StageRuntime.Load(Config, w, new StageSpec(0, Config.NumLayers, Config.NumLayers), new EngineOptions { MaxContext = MaxContext, IntraOpThreads = 1 });
        using var pool = runtime.CreateKvPool(1);
        var batcher = new StageBatcher(runtime, pool, new BatcherOptions { Admission = new AdmissionOptions { MaxWait = TimeSpan.FromSeconds(30) } });
        await batcher.ReserveAsync("a");
        var waiting = batcher.ReserveAsync("b");

        using var gate = new ManualResetEventSlim();
        var held = batcher.StepAsync(new StepJob { SessionId = "a", PastLength = 0, TokenCount = 2, Tokens = [1, 2], Sample = (l, _) => { gate.Wait(); return 0; } });
        var queued = batcher.StepAsync(Decode("a", 2, 3));
        var disposing = Task.Run(batcher.Dispose);
        // Dispose marks the stage stopping, then closes admission: once the waiting reservation is refused, the run
        // in progress may end (no sleep standing in for that order).
        await Assert.ThrowsAsync<KvAdmissionException>(() => waiting).WaitAsync(TimeSpan.FromSeconds(30));
        gate.Set();
        await disposing.WaitAsync(TimeSpan.FromSeconds(30));

        await held; // the run in progress completes
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued);
        Assert.Throws<ObjectDisposedException>(() => { _ = batcher.StepAsync(Decode("a", 2, 3)); });
    }
}
