using Strata.Testing;
using Microsoft.Extensions.DependencyInjection;
using Strata.Contracts;
using Strata.Grains.Stages;
using Strata.Engine.Generation;
using Strata.Engine.Runtime;
using Strata.Engine.Sampling;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Cluster.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ClusterGenerationTests(ClusterFixture fx)
{
    private async Task<ModelStatus> Deploy(string model, int? stages = 3, int maxSessions = 8, int? queue = null, TimeSpan? wait = null) =>
        await fx.Client.DeployAsync(model, new DeployRequest(ClusterFixture.Package, stages, MaxContext: 128, MaxSessions: maxSessions,
                AdmissionQueue: queue, AdmissionWait: wait),
            timeout: TimeSpan.FromMinutes(2));

    private GenerationResult Local(string prompt, int maxNewTokens, int[]? promptIds = null, string package = ClusterFixture.Package,
        Engine.Graph.ComputeType? kv = null)
    {
        using var model = ModelLoader.Open(Path.Combine(fx.Store, package));
        var tokenizer = TokenizerLoader.Load(model.TokenizerDirectory);
        using var pipeline = LocalPipeline.Load(model.Config, model.Tensors, 1, new EngineOptions { MaxContext = 128, IntraOpThreads = 1, KvPrecision = kv });
        var ids = promptIds ?? tokenizer.Encode(prompt);
        return LocalGenerator.Generate(pipeline, tokenizer, ids,
            SamplingParams.Greedy with { MaxNewTokens = maxNewTokens, StopIds = tokenizer.EosIds });
    }

    private async Task<(int[] Tokens, string Text, string? Finish, int[]? PromptIds)> Cluster(string session, string model, string prompt,
        int maxNewTokens, CancellationToken ct = default)
    {
        var tokens = new List<int>();
        var text = new System.Text.StringBuilder();
        string? finish = null;
        int[]? promptIds = null;
        await foreach (var chunk in fx.Client.GenerateAsync(session, new GenerateRequest { Model = model, Prompt = prompt, MaxNewTokens = maxNewTokens }, ct))
        {
            tokens.AddRange(chunk.TokenIds);
            text.Append(chunk.Text);
            finish ??= chunk.FinishReason;
            promptIds ??= chunk.PromptIds;
        }
        return (tokens.ToArray(), text.ToString(), finish, promptIds);
    }

    [Fact]
    public async Task Three_stage_deployment_places_shards_on_the_planned_silos_and_matches_local_generation()
    {
        var status = await Deploy("m-basic");
        Assert.Equal(DeploymentState.Ready, status.State);
        Assert.Equal(3, status.Stages.Count);
        Assert.Equal(3, status.Stages.Select(s => s.Silo).Distinct().Count());
        foreach (var stage in status.Stages) Assert.EndsWith("#" + stage.Silo, stage.ShardKey);
        Assert.Equal(Enumerable.Range(0, 4), status.Stages.SelectMany(s => Enumerable.Range(s.FirstLayer, s.EndLayer - s.FirstLayer)));

        var local = Local("The quick brown fox", 16);
        var remote = await Cluster("s-basic", "m-basic", "The quick brown fox", 16);
        Assert.Equal(local.GeneratedIds, remote.Tokens);
        Assert.Equal(local.Text, remote.Text);
        Assert.Equal(local.StopReason, remote.Finish);
        Assert.Equal(local.PromptIds, remote.PromptIds);
    }

    [Fact]
    public async Task Eight_concurrent_sessions_are_all_correct()
    {
        await Deploy("m-concurrent");
        string[] prompts = Enumerable.Range(0, 8).Select(i => $"story number {i} begins with").ToArray();
        var expected = prompts.Select(p => Local(p, 10).GeneratedIds).ToArray();
        var results = await Task.WhenAll(prompts.Select((p, i) => Cluster($"s-conc-{i}", "m-concurrent", p, 10)));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i], results[i].Tokens);
    }

    [Fact]
    public async Task A_second_turn_continues_from_the_cached_kv_and_equals_generating_from_the_full_history()
    {
        await Deploy("m-turns");
        var first = await Cluster("s-turns", "m-turns", "Once upon a time", 8);
        var second = await Cluster("s-turns", "m-turns", " and then", 8);
        var info = await fx.Client.Orleans.GetGrain<ISessionGrain>("s-turns").GetInfo();
        Assert.True(info.HoldsKv);

        using var model = ModelLoader.Open(Path.Combine(fx.Store, ClusterFixture.Package));
        var tokenizer = TokenizerLoader.Load(model.TokenizerDirectory);
        int[] history = [.. first.PromptIds!, .. first.Tokens, .. tokenizer.Encode(" and then", addBos: false)];
        Assert.Equal(history[first.PromptIds!.Length..].Skip(first.Tokens.Length), second.PromptIds);
        var local = Local("", 8, history);
        Assert.Equal(local.GeneratedIds, second.Tokens);
    }

    [Fact]
    public async Task Cancelling_a_stream_frees_the_kv_at_every_stage()
    {
        await Deploy("m-cancel");
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var chunk in fx.Client.GenerateAsync("s-cancel", new GenerateRequest { Model = "m-cancel", Prompt = "abc", MaxNewTokens = 100 }, cts.Token))
            {
                if (++seen == 3) cts.Cancel();
            }
        });
        var deadline = DateTime.UtcNow.AddSeconds(20);
        ModelStatus status;
        do
        {
            status = await fx.Client.GetModelStatusAsync("m-cancel");
            if (status.Stages.All(s => s.ActiveSessions == 0)) break;
            await Task.Delay(100);
        } while (DateTime.UtcNow < deadline);
        Assert.All(status.Stages, s => Assert.Equal(0, s.ActiveSessions));
    }

    public static TheoryData<string, string> OutOfBounds => new()
    {
        { "max_new_tokens", "max_new_tokens must be at most" },
        { "prompt_chars", "at most 4194304 characters" },
        { "stops", "at most 64 stop strings" },
        { "stop_length", "at most 1024 characters" },
        { "rng", "RNG state must be 4 words" },
        { "rng_zero", "not all zero" },
        { "messages", "messages must number" },
        { "null_prompt", "must not be null" },
    };

    [Theory]
    [MemberData(nameof(OutOfBounds))]
    public async Task Requests_past_the_session_bounds_are_typed_errors(string what, string says)
    {
        await Deploy("m-errors");
        var ok = new GenerateRequest { Model = "m-errors", Prompt = "x", MaxNewTokens = 2 };
        var request = what switch
        {
            "max_new_tokens" => ok with { MaxNewTokens = int.MaxValue },
            "prompt_chars" => ok with { Prompt = new string('a', (4 << 20) + 1) },
            "stops" => ok with { StopStrings = Enumerable.Repeat("s", 65).ToArray() },
            "stop_length" => ok with { StopStrings = [new string('s', 1025)] },
            "rng" => ok with { Resume = new TurnResume(0, 0, [], [1, 2]) },
            "rng_zero" => ok with { Resume = new TurnResume(0, 0, [], [0, 0, 0, 0]) },
            "messages" => ok with { Messages = [] },
            "null_prompt" => ok with { Prompt = null! },
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var e = await Assert.ThrowsAsync<StrataException>(async () =>
        {
            await foreach (var _ in fx.Client.Orleans.GetGrain<ISessionGrain>("s-bounds-" + what).GenerateAsync(request)) { }
        });
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.Contains(says, e.Message);
    }

    [Theory]
    [InlineData(0, 1024, 8, "stages must be between")]
    [InlineData(1, int.MaxValue, 8, "max context must be between")]
    [InlineData(1, 1024, -1, "max sessions must be between")]
    [InlineData(1, 1 << 22, 1 << 16, "must stay below")]
    public async Task Deploy_requests_out_of_range_are_typed_errors(int stages, int context, int sessions, string says)
    {
        var e = await Assert.ThrowsAsync<StrataException>(() => fx.Client.DeployAsync("m-bounds", new DeployRequest(ClusterFixture.Package, stages, context, sessions)));
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public async Task Invalid_requests_get_typed_errors()
    {
        await Deploy("m-errors");
        var e = await Assert.ThrowsAsync<StrataException>(() => Cluster("s-err-1", "m-errors", "x", 0));
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.Contains("max_new_tokens", e.Message);
        var e2 = await Assert.ThrowsAsync<StrataException>(() => Cluster("s-err-2", "not-deployed", "x", 4));
        Assert.Equal(ErrorCodes.ModelNotFound, e2.Code);
        var e3 = await Assert.ThrowsAsync<StrataException>(() => Cluster("s-err-3", "m-errors", new string('a', 2000), 4));
        Assert.Equal(ErrorCodes.ContextOverflow, e3.Code);
        var e4 = await Assert.ThrowsAsync<StrataException>(() => fx.Client.DeployAsync("m-bad", new DeployRequest("no-such-package")));
        Assert.Equal(ErrorCodes.InvalidRequest, e4.Code);
        Assert.Contains("no-such-package", e4.Message);
    }

    [Fact]
    public async Task A_shard_checks_inbound_activations_for_shape_and_dtype()
    {
        await Deploy("m-activations");
        var route = await fx.Client.Orleans.GetGrain<IModelGrain>("m-activations").GetRoute();
        var second = fx.Client.Orleans.GetGrain<IShardGrain>(route.ShardKeys[1]);
        await second.Reserve("probe");
        try
        {
            var sampling = new SamplingSpec();
            var e = await Assert.ThrowsAsync<StrataException>(() => second.Step(new StepRequest("probe", 0, 1, null, new byte[10], "fp32", sampling, [], Route: route.ShardKeys)));
            Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
            Assert.Contains("bytes", e.Message);
            var e2 = await Assert.ThrowsAsync<StrataException>(() => second.Step(new StepRequest("probe", 0, 1, null, new byte[256], "int8", sampling, [], Route: route.ShardKeys)));
            Assert.Contains("int8", e2.Message);
            var e3 = await Assert.ThrowsAsync<StrataException>(() => second.Step(new StepRequest("probe", 5, 1, null, new byte[256], "fp32", sampling, [], Route: route.ShardKeys)));
            Assert.Contains("position 5", e3.Message);
        }
        finally
        {
            await second.Release("probe");
        }
    }

    [Fact]
    public async Task Stories260K_through_three_stages_equals_local_generation()
    {
        var status = await fx.Client.DeployAsync("m-stories", new DeployRequest(ClusterFixture.StoriesPackage, 3, MaxContext: 256, MaxSessions: 2),
            timeout: TimeSpan.FromMinutes(2));
        Assert.Equal(3, status.Stages.Count);
        var local = Local("Once upon a time", 60, package: ClusterFixture.StoriesPackage);
        var remote = await Cluster("s-stories", "m-stories", "Once upon a time", 60);
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", remote.Text);
        Assert.Equal(local.GeneratedIds, remote.Tokens);
        Assert.Equal(local.Text, remote.Text);
    }

    [Fact]
    public async Task An_fp16_kv_deployment_reserves_half_the_kv_and_generates_what_the_local_fp16_kv_engine_does()
    {
        DeployRequest Request(string? kv) => new(ClusterFixture.Package, 2, MaxContext: 128, MaxSessions: 4, KvDtype: kv);
        var plan32 = await fx.Client.Orleans.GetGrain<IModelGrain>("m-kv-plan").PlanDeploy(Request(null));
        var plan16 = await fx.Client.Orleans.GetGrain<IModelGrain>("m-kv-plan").PlanDeploy(Request("fp16"));
        Assert.Equal(plan32.Stages.Select(s => s.KvBytes / 2), plan16.Stages.Select(s => s.KvBytes));

        var fp32 = await fx.Client.DeployAsync("m-kv32", Request("fp32"), timeout: TimeSpan.FromMinutes(2));
        var fp16 = await fx.Client.DeployAsync("m-kv16", Request("fp16"), timeout: TimeSpan.FromMinutes(2));
        Assert.Equal(fp32.Stages.Select(s => s.Slots), fp16.Stages.Select(s => s.Slots));
        Assert.Equal(fp32.Stages.Select(s => s.KvBytes / 2), fp16.Stages.Select(s => s.KvBytes));

        var local = Local("Once upon a time", 24, kv: Engine.Graph.ComputeType.Float16);
        var remote = await Cluster("s-kv16", "m-kv16", "Once upon a time", 24);
        Assert.Equal(local.GeneratedIds, remote.Tokens);

        var e = await Assert.ThrowsAsync<StrataException>(() => fx.Client.DeployAsync("m-kv-bad", Request("int8")));
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.Contains("KV dtype must be fp16 or fp32", e.Message);
    }

    [Fact]
    public async Task A_new_session_is_placed_on_the_silo_of_the_first_stage()
    {
        var status = await Deploy("m-placement");
        await Cluster("s-placement", "m-placement", "hello", 2);
        var silo = await GrainLocation.SiloOf(fx.Client.Orleans, fx.Client.Orleans.GetGrain<ISessionGrain>("s-placement"));
        Assert.Equal(status.Stages[0].Silo, silo);
    }

    private static string[] VariedPrompts(int n) =>
        Enumerable.Range(0, n).Select(i => string.Join(' ', Enumerable.Repeat($"w{i}", 1 + i * 3 % 17))).ToArray();

    [Fact]
    public async Task Sixteen_concurrent_sessions_with_different_prompt_lengths_equal_each_session_alone()
    {
        await Deploy("m-batch16", maxSessions: 16);
        string[] prompts = VariedPrompts(16);
        var expected = prompts.Select(p => Local(p, 12).GeneratedIds).ToArray();
        var hops = new List<int>();
        using var listener = HopSteps("m-batch16", hops);
        var results = await Task.WhenAll(prompts.Select((p, i) => Cluster($"s-b16-{i}", "m-batch16", p, 12)))
            .WaitAsync(TimeSpan.FromMinutes(2));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i], results[i].Tokens);
        // The outputs of one decode run went on to the next stage as one message, not one per session.
        lock (hops) Assert.Contains(hops, n => n > 1);
    }

    /// <summary>Collects the steps per message between stages of <paramref name="model"/> (strata_stage_hop_steps).</summary>
    private static System.Diagnostics.Metrics.MeterListener HopSteps(string model, List<int> into)
    {
        var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "strata_stage_hop_steps") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == "model" && Equals(tag.Value, model))
                    lock (into) into.Add(value);
        });
        listener.Start();
        return listener;
    }

    [Fact]
    public async Task A_step_batch_fails_each_bad_step_alone_and_refuses_a_malformed_batch()
    {
        await Deploy("m-step-batch");
        var route = await fx.Client.Orleans.GetGrain<IModelGrain>("m-step-batch").GetRoute();
        var second = fx.Client.Orleans.GetGrain<IShardGrain>(route.ShardKeys[1]);
        await second.Reserve("batch-probe");
        try
        {
            var sampling = new SamplingSpec();
            StepRequest Probe(string session, int past, byte[] hidden) => new(session, past, 1, null, hidden, "fp32", sampling, [], Route: route.ShardKeys);
            var replies = await second.StepBatch([Probe("batch-probe", 0, new byte[10]), Probe("no-such-session", 0, new byte[256]), Probe("batch-probe-2", 3, new byte[256])]);
            Assert.Equal(3, replies.Length);
            Assert.All(replies, r => Assert.Null(r.Result));
            Assert.Equal(ErrorCodes.InvalidRequest, replies[0].ErrorCode);
            Assert.Contains("bytes", replies[0].Error);
            Assert.Equal(ErrorCodes.KvLost, replies[1].ErrorCode);
            Assert.Contains("no-such-session", replies[1].Error);

            var empty = await Assert.ThrowsAsync<StrataException>(() => second.StepBatch([]));
            Assert.Equal(ErrorCodes.InvalidRequest, empty.Code);
            var twice = await Assert.ThrowsAsync<StrataException>(() => second.StepBatch([Probe("batch-probe", 0, new byte[256]), Probe("batch-probe", 1, new byte[256])]));
            Assert.Contains("two steps of session batch-probe", twice.Message);
            var tooMany = await Assert.ThrowsAsync<StrataException>(() => second.StepBatch(
                [.. Enumerable.Range(0, IShardGrain.MaxStepBatch + 1).Select(i => Probe($"s{i}", 0, new byte[256]))]));
            Assert.Contains($"1 to {IShardGrain.MaxStepBatch} steps", tooMany.Message);
        }
        finally
        {
            await second.Release("batch-probe");
        }
    }

    [Fact]
    public async Task With_kv_for_4_sessions_16_offered_all_complete_and_the_rest_wait()
    {
        var status = await Deploy("m-budget4", maxSessions: 4);
        Assert.All(status.Stages, s => Assert.Equal(4, s.Slots));
        string[] prompts = VariedPrompts(16);
        var expected = prompts.Select(p => Local(p, 30).GeneratedIds).ToArray();
        var running = prompts.Select((p, i) => Cluster($"s-bud-{i}", "m-budget4", p, 30)).ToArray();

        int maxWaiting = 0;
        while (!running.All(t => t.IsCompleted))
        {
            var now = await fx.Client.GetModelStatusAsync("m-budget4");
            maxWaiting = Math.Max(maxWaiting, now.Stages.Max(s => s.WaitingSessions));
            Assert.All(now.Stages, s => Assert.True(s.ActiveSessions <= 4));
            await Task.WhenAny(Task.WhenAll(running), Task.Delay(20));
        }
        var results = await Task.WhenAll(running).WaitAsync(TimeSpan.FromMinutes(2));
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i], results[i].Tokens);
        Assert.True(maxWaiting > 0, "no session ever waited for a KV slot");
    }

    [Fact]
    public async Task With_a_tiny_queue_the_excess_get_overloaded_and_the_admitted_sessions_finish()
    {
        await Deploy("m-tinyqueue", maxSessions: 2, queue: 1, wait: TimeSpan.FromSeconds(30));
        string[] prompts = VariedPrompts(8);
        var expected = prompts.Select(p => Local(p, 40).GeneratedIds).ToArray();
        var outcomes = await Task.WhenAll(prompts.Select(async (p, i) =>
        {
            try { return (Result: await Cluster($"s-tq-{i}", "m-tinyqueue", p, 40), Error: (StrataException?)null); }
            catch (StrataException e) { return (Result: default((int[], string, string?, int[]?)), Error: e); }
        })).WaitAsync(TimeSpan.FromMinutes(2));

        var refused = outcomes.Where(o => o.Error is not null).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, o =>
        {
            Assert.Equal(ErrorCodes.Overloaded, o.Error!.Code);
            Assert.Contains("queue limit 1", o.Error.Message);
        });
        Assert.True(outcomes.Count(o => o.Error is null) >= 3, "the two running sessions and the queued one all finish");
        for (int i = 0; i < prompts.Length; i++)
            if (outcomes[i].Error is null) Assert.Equal(expected[i], outcomes[i].Result.Item1);

        var after = await Cluster("s-tq-after", "m-tinyqueue", prompts[0], 5); // the cluster keeps serving
        Assert.Equal(expected[0][..5], after.Tokens);
    }

    [Fact]
    public async Task A_session_cancelled_mid_batch_leaves_the_others_unaffected_and_frees_its_kv()
    {
        await Deploy("m-cancel-batch", maxSessions: 8);
        string[] prompts = VariedPrompts(5);
        var expected = prompts.Select(p => Local(p, 30).GeneratedIds).ToArray();
        using var cts = new CancellationTokenSource();
        var others = prompts.Skip(1).Select((p, i) => Cluster($"s-cb-{i + 1}", "m-cancel-batch", p, 30)).ToArray();
        var cancelled = Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            int seen = 0;
            await foreach (var chunk in fx.Client.GenerateAsync("s-cb-0", new GenerateRequest { Model = "m-cancel-batch", Prompt = prompts[0], MaxNewTokens = 30 }, cts.Token))
                if (++seen == 3) await cts.CancelAsync();
        });
        await cancelled.WaitAsync(TimeSpan.FromMinutes(1));
        var results = await Task.WhenAll(others).WaitAsync(TimeSpan.FromMinutes(2));
        for (int i = 0; i < others.Length; i++) Assert.Equal(expected[i + 1], results[i].Tokens);

        var deadline = DateTime.UtcNow.AddSeconds(20);
        ModelStatus status;
        do
        {
            status = await fx.Client.GetModelStatusAsync("m-cancel-batch");
            if (status.Stages.All(s => s.ActiveSessions == others.Length)) break;
            await Task.Delay(100);
        } while (DateTime.UtcNow < deadline);
        Assert.All(status.Stages, s => Assert.Equal(others.Length, s.ActiveSessions)); // the finished ones keep theirs for a next turn
        var info = await fx.Client.Orleans.GetGrain<ISessionGrain>("s-cb-0").GetInfo();
        Assert.False(info.HoldsKv);
    }

    [Fact]
    public async Task A_redeploy_unloads_the_previous_version_and_returns_its_memory()
    {
        var hosts = fx.Cluster.Silos.Select(s => s.ServiceProvider.GetRequiredService<StageHost>()).ToArray();
        long before = hosts.Sum(h => h.ReservedBytes);
        var first = await Deploy("m-redeploy", stages: 2);
        long loaded = hosts.Sum(h => h.ReservedBytes);
        Assert.True(loaded > before);

        var second = await Deploy("m-redeploy", stages: 3);
        Assert.Equal(3, second.Stages.Count);
        Assert.All(first.Stages, s => Assert.DoesNotContain(s.ShardKey, second.Stages.Select(t => t.ShardKey)));
        long again = hosts.Sum(h => h.ReservedBytes);
        Assert.InRange(again - before, (long)((loaded - before) * 0.9), (long)((loaded - before) * 1.2)); // one copy, not two

        var local = Local("after a redeploy", 6);
        Assert.Equal(local.GeneratedIds, (await Cluster("s-redeploy", "m-redeploy", "after a redeploy", 6)).Tokens);
    }

    [Fact]
    public async Task A_session_whose_parked_kv_was_taken_rebuilds_it_from_its_history_on_the_next_turn()
    {
        await Deploy("m-evict", maxSessions: 1);
        var first = await Cluster("s-evict-a", "m-evict", "Once upon a time", 8);
        Assert.True((await fx.Client.Orleans.GetGrain<ISessionGrain>("s-evict-a").GetInfo()).HoldsKv); // parked, cache kept

        await Cluster("s-evict-b", "m-evict", "another session takes the only slot", 4); // evicts a's parked slot
        var second = await Cluster("s-evict-a", "m-evict", " and then", 8);

        using var model = ModelLoader.Open(Path.Combine(fx.Store, ClusterFixture.Package));
        var tokenizer = TokenizerLoader.Load(model.TokenizerDirectory);
        int[] history = [.. first.PromptIds!, .. first.Tokens, .. tokenizer.Encode(" and then", addBos: false)];
        Assert.Equal(Local("", 8, history).GeneratedIds, second.Tokens);
    }

    [Fact]
    public async Task After_its_kv_is_released_a_session_rebuilds_the_cache_and_continues_exactly()
    {
        await Deploy("m-ttl");
        var first = await Cluster("s-ttl", "m-ttl", "Once upon a time", 8);
        var session = fx.Client.Orleans.GetGrain<ISessionGrain>("s-ttl");
        await session.ReleaseKv(); // what the idle TTL does
        var info = await session.GetInfo();
        Assert.False(info.HoldsKv);
        Assert.Equal(first.PromptIds!.Length + first.Tokens.Length, info.HistoryTokens);

        var second = await Cluster("s-ttl", "m-ttl", " and then", 8);
        using var model = ModelLoader.Open(Path.Combine(fx.Store, ClusterFixture.Package));
        var tokenizer = TokenizerLoader.Load(model.TokenizerDirectory);
        int[] history = [.. first.PromptIds!, .. first.Tokens, .. tokenizer.Encode(" and then", addBos: false)];
        Assert.Equal(Local("", 8, history).GeneratedIds, second.Tokens);
    }

    [Fact]
    public async Task When_one_stage_drops_a_sessions_kv_the_next_turn_rebuilds_it_and_continues_exactly()
    {
        await Deploy("m-kvlost");
        var first = await Cluster("s-kvlost", "m-kvlost", "Once upon a time", 8);
        var route = await fx.Client.Orleans.GetGrain<IModelGrain>("m-kvlost").GetRoute();
        // Stage 1 loses the session's cache but holds an empty slot under its name (as after an expiry and a
        // reservation): the session believes its cache is kept, its next step is refused (kv_lost), and it must
        // take slots again and replay its history.
        var stage1 = fx.Client.Orleans.GetGrain<IShardGrain>(route.ShardKeys[1]);
        await stage1.Release("s-kvlost");
        await stage1.Reserve("s-kvlost");

        var second = await Cluster("s-kvlost", "m-kvlost", " and then", 8);
        using var model = ModelLoader.Open(Path.Combine(fx.Store, ClusterFixture.Package));
        var tokenizer = TokenizerLoader.Load(model.TokenizerDirectory);
        int[] history = [.. first.PromptIds!, .. first.Tokens, .. tokenizer.Encode(" and then", addBos: false)];
        Assert.Equal(Local("", 8, history).GeneratedIds, second.Tokens);
    }

    [Fact]
    public async Task A_turn_refused_for_lack_of_kv_leaves_the_sessions_history_as_it_was()
    {
        await Deploy("m-refused", maxSessions: 1, queue: 0);
        var route = await fx.Client.Orleans.GetGrain<IModelGrain>("m-refused").GetRoute();
        var shards = route.ShardKeys.Select(k => fx.Client.Orleans.GetGrain<IShardGrain>(k)).ToArray();
        foreach (var shard in shards) await shard.Reserve("holder"); // a running session's slot: not evictable
        try
        {
            var e = await Assert.ThrowsAsync<StrataException>(() => Cluster("s-refused", "m-refused", "no room", 4));
            Assert.Equal(ErrorCodes.Overloaded, e.Code);
            Assert.Equal(0, (await fx.Client.Orleans.GetGrain<ISessionGrain>("s-refused").GetInfo()).HistoryTokens);
        }
        finally
        {
            foreach (var shard in shards) await shard.Release("holder");
        }
        var after = await Cluster("s-refused", "m-refused", "no room", 4); // the same session, admitted now
        Assert.Equal(Local("no room", 4).GeneratedIds, after.Tokens);
    }

    [Fact]
    public async Task A_prompt_longer_than_one_step_goes_in_several_and_equals_local_generation()
    {
        await Deploy("m-longprompt");
        int[] ids = Enumerable.Range(0, 100).Select(i => 3 + i * 7 % 200).ToArray(); // 100 tokens: 7 steps of at most 16
        var tokens = new List<int>();
        await foreach (var chunk in fx.Client.GenerateAsync("s-longprompt", new GenerateRequest { Model = "m-longprompt", PromptIds = ids, MaxNewTokens = 8 }))
            tokens.AddRange(chunk.TokenIds);
        Assert.Equal(Local("", 8, ids).GeneratedIds, tokens);
        var info = await fx.Client.Orleans.GetGrain<ISessionGrain>("s-longprompt").GetInfo();
        Assert.Equal(100 + tokens.Count, info.HistoryTokens);
    }
}
