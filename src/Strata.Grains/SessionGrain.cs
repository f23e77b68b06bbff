using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;

namespace Strata.Grains;

/// <summary>
/// A conversation. It owns the token history, the RNG state and a KV lease at every stage; it runs the decode
/// loop (step through the shard chain, detokenize, check stops) and streams chunks. A follow-up turn sends only the
/// tokens the stages have not cached yet. Cancelling a turn, going idle past the TTL or deactivating releases the
/// KV everywhere; the history stays, so a later turn rebuilds the cache. History, RNG state and turn are saved to
/// grain storage at the end of every turn. A step that fails or passes its deadline (<see cref="StepDeadlines"/>)
/// means a lost stage: the session asks the model grain for a route that serves, replays its history through it and
/// carries on; the stream sees no error, no duplicate and no missing token.
/// </summary>
internal sealed partial class SessionGrain(
    [PersistentState("session", StrataStorage.Name)] IPersistentState<SessionRecord> state,
    IGrainFactory grains,
    TokenizerCache tokenizers,
    StepDeadlines deadlines,
    Control.PeerWatch peers,
    IOptions<StrataSiloOptions> options,
    ILogger<SessionGrain> logger)
    : Grain, ISessionGrain
{
    private Route? _route;
    private int _cached;          // positions every stage holds in KV
    private bool _holdsKv;
    private bool _busy;
    private DateTime _lastActive = DateTime.UtcNow;
    private IGrainTimer? _ttlTimer;
    private const int MaxKvRebuilds = 2;
    private const int MaxFailovers = 8;

    private List<int> History => state.State.History;
    private string? SessionModel { get => state.State.Model; set => state.State.Model = value; }
    private ulong[]? Rng { get => state.State.Rng; set => state.State.Rng = value; }
    /// <summary>Epoch of the current turn; the stages refuse steps of another one.</summary>
    private long TurnEpoch { get => state.State.Turn; set => state.State.Turn = value; }

    private string Id => this.GetPrimaryKeyString();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Turn epochs fence the stages' KV slots: a stage refuses a reservation, a step or a release for a turn older
        // than the one it holds. After a silo is lost Orleans can activate a session a second time while the first
        // activation still runs its turn; starting every activation's epochs from its start time (ms x 1024, above
        // any epoch an older activation reached) makes the newer one win and the older one stop.
        TurnEpoch = Math.Max(TurnEpoch, (long)(DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds * 1024);
        var ttl = options.Value.SessionKvTtl;
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, ttl.Ticks / 4));
        _ttlTimer = this.RegisterGrainTimer(async () =>
        {
            if (_holdsKv && !_busy && DateTime.UtcNow - _lastActive > ttl) await ReleaseKvCore();
        }, new GrainTimerCreationOptions(period, period) { Interleave = true });
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _ttlTimer?.Dispose();
        await ReleaseKvCore();
    }

    public Task<SessionInfo> GetInfo()
    {
        CheckCaller();
        return Task.FromResult(new SessionInfo(Id, SessionModel, History.Count, _cached, _holdsKv, GeneratingTurn));
    }

    /// <summary>A caller that names an owner (<see cref="CallerContext"/>) other than the session's is told that the
    /// session does not exist, so that session ids of other API keys cannot be probed.</summary>
    private void CheckCaller()
    {
        if (RequestContext.Get(CallerContext.Key) is not string caller) return;
        if (state.State.Owner is { } owner ? owner != caller : History.Count > 0)
            throw new StrataException(ErrorCodes.NotFound, $"no session '{Id}'");
    }

    public Task ReleaseKv()
    {
        CheckCaller();
        return ReleaseKvCore();
    }

    public async Task Close()
    {
        CheckCaller();
        if (_running is { } running)
        {
            try { await running.Stop.CancelAsync(); }
            catch (ObjectDisposedException) { /* the turn ended already */ }
            await running.Done;
        }
        await ReleaseKvCore();
        await state.ClearStateAsync();
        DeactivateOnIdle();
    }

    private async Task ReleaseKvCore()
    {
        var route = _route;
        bool held = _holdsKv;
        _holdsKv = false;
        _cached = 0;
        if (route is null || !held) return;
        await Task.WhenAll(route.ShardKeys.Select(k => Quietly(() => grains.GetGrain<IShardGrain>(k).Release(Id, TurnEpoch))));
    }

    public async IAsyncEnumerable<GenerateChunk> GenerateAsync(GenerateRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        Validate(request);
        CheckCaller();
        if (state.State.Owner is null && History.Count == 0 && RequestContext.Get(CallerContext.Key) is string caller)
            state.State.Owner = caller;
        if (_busy && request.Resume is { } resume && _running is { } earlier && resume.Turn == state.State.CompletedTurns)
        {
            // The client resumes a turn whose stream it gave up on while this activation still runs it: end that
            // run first (its tokens are what the client received, or ahead of it).
            earlier.Stop.Cancel();
            await earlier.Done;
        }
        if (_busy) throw new StrataException(ErrorCodes.InvalidRequest, $"session {Id} is already generating; wait for the turn to finish");
        if (SessionModel is not null && SessionModel != request.Model)
            throw new StrataException(ErrorCodes.InvalidRequest, $"session {Id} belongs to model '{SessionModel}', not '{request.Model}'");
        _busy = true;

        // The decode loop runs ahead of the consumer: steps do not wait for the client to pull each chunk. It ends
        // the turn itself (park or release, save), so a stream its client abandoned still frees the session.
        var chunks = Channel.CreateUnbounded<GenerateChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var turn = new Turn();
        var run = RunTurn(request, chunks.Writer, turn, stop);
        _running = (stop, run);
        try
        {
            await foreach (var chunk in chunks.Reader.ReadAllAsync(cancellation))
                yield return chunk;
            if (turn.Failure is not null) ExceptionDispatchInfo.Throw(turn.Failure);
        }
        finally
        {
            try { await stop.CancelAsync(); }
            catch (ObjectDisposedException) { /* the turn ended already */ }
            await run;
        }
    }

    private (CancellationTokenSource Stop, Task Done)? _running;

    /// <summary>Shards a drain asked the running turn to leave (<see cref="Move"/>); taken by the decode loop.</summary>
    private HashSet<string>? _leaving;
    /// <summary>Slots on shards the session has moved off, given back once a step on the new route has returned.</summary>
    private string[]? _releaseAfterStep;

    public Task<bool> Move(string[] leaving)
    {
        if (!_busy || _route is not { } route || !route.ShardKeys.Any(leaving.Contains)) return Task.FromResult(false);
        _leaving = leaving.ToHashSet(StringComparer.Ordinal);
        // The positions cached so far never change: they are copied to the replacements while the turn decodes on.
        if (options.Value.CopyKvOnMove && _holdsKv && _cached > 0 && _preparing is null)
            _preparing = PrepareMove(route, _leaving, TurnEpoch + 1, _cached);
        return Task.FromResult(true);
    }

    /// <summary>A drain's move made ready while the turn ran on: <see cref="To"/> is the deployment's route without the
    /// leaving shards, and each of its shards that <see cref="From"/> did not have holds the first
    /// <see cref="Positions"/> positions under the turn epoch <see cref="Epoch"/>.</summary>
    private sealed record PreparedMove(Route From, Route To, long Epoch, int Positions)
    {
        public IEnumerable<string> NewShards => To.ShardKeys.Where((k, i) => i >= From.ShardKeys.Count || From.ShardKeys[i] != k);
    }

    /// <summary>The move being made ready (<see cref="PrepareMove"/>), taken by the decode loop once it is.</summary>
    private Task<PreparedMove?>? _preparing;

    /// <summary>
    /// Makes a drain's move ready without stopping the turn (make before break): takes the route without the leaving
    /// shards, reserves the replacement shards under the epoch the move will switch to, and copies them the first
    /// <paramref name="positions"/> positions, which the turn's later steps do not touch. The decode loop switches
    /// once this is done, and its next step computes only the positions cached since (a step of a few tokens), so the
    /// stream pauses for about one step instead of for the whole copy. Null when the move cannot be made this way
    /// (the route keeps a leaving shard, a copy failed): the loop then moves as before, copying or replaying.
    /// </summary>
    private async Task<PreparedMove?> PrepareMove(Route from, HashSet<string> leaving, long epoch, int positions)
    {
        PreparedMove? prepared = null;
        var clock = Stopwatch.StartNew();
        try
        {
            var next = await grains.GetGrain<IModelGrain>(from.Model).GetRoute(from.ShardKeys);
            if (next.ShardKeys.Any(leaving.Contains) || next.ShardKeys.Count != from.ShardKeys.Count) return null;
            prepared = new PreparedMove(from, next, epoch, positions);
            foreach (var key in prepared.NewShards)
                await grains.GetGrain<IShardGrain>(key).Reserve(Id, epoch);
            await CopyKvRange(from, next, epoch, 0, positions, CancellationToken.None);
            LogKvPrepared(logger, Id, positions, clock.Elapsed.TotalMilliseconds);
            return prepared;
        }
        catch (Exception e) when (e is StrataException or TimeoutException or OrleansException)
        {
            LogKvCopyFailed(logger, Id, Describe(e));
            if (prepared is not null) AbandonPrepared(prepared);
            return null;
        }
    }

    /// <summary>Gives back the slots a prepared move took that the session's route does not use.</summary>
    private void AbandonPrepared(PreparedMove prepared)
    {
        var keep = _route?.ShardKeys.ToHashSet(StringComparer.Ordinal) ?? [];
        _ = Task.WhenAll(prepared.NewShards.Where(k => !keep.Contains(k))
            .Select(k => Quietly(() => grains.GetGrain<IShardGrain>(k).Release(Id, prepared.Epoch))));
    }

    /// <summary>
    /// A planned move (a drain): takes the deployment's route for this session, which no longer has the shards
    /// leaving, reserves on it under a new turn epoch and replays the history there, while the slots on the shards
    /// it leaves are kept until that replay has returned a token (<see cref="_releaseAfterStep"/>). When the route
    /// still holds them (the deployment has not dropped them) the session stays. With a move made ready while the
    /// turn ran (<paramref name="prepared"/>) the replacements already hold the start of the cache and only the rest
    /// is computed.
    /// </summary>
    private async Task<Route> Relocate(Route current, HashSet<string> leaving, PreparedMove? prepared, CancellationToken cancellation)
    {
        bool ready = prepared is { } p && ReferenceEquals(p.From, current) && p.Epoch == TurnEpoch + 1 && _holdsKv && _cached >= p.Positions;
        if (!ready && prepared is not null) AbandonPrepared(prepared);
        var next = ready ? prepared!.To
            : await WithRetries(() => grains.GetGrain<IModelGrain>(current.Model).GetRoute(current.ShardKeys), cancellation);
        if (next.ShardKeys.Any(leaving.Contains)) return current;
        LogMove(logger, Id, string.Join(", ", current.ShardKeys), string.Join(", ", next.ShardKeys));
        _releaseAfterStep = [.. _releaseAfterStep ?? [], .. current.ShardKeys.Except(next.ShardKeys)];
        int cached = _holdsKv ? _cached : 0;
        SwitchTo(next); // a prepared move: the epoch its replacements were reserved under
        var route = await ReserveOrFailover(next, cancellation);
        if (!ReferenceEquals(route, next)) return route;
        // Prepared: the replacements hold its positions, and stages both routes share hold more, whose tail the next
        // step rewrites with the same values. Otherwise the whole cache is copied now, or replayed.
        if (ready) _cached = prepared!.Positions;
        else if (cached > 0 && options.Value.CopyKvOnMove) _cached = await CopyKv(current, next, cached, cancellation);
        return route;
    }

    /// <summary>
    /// Copies the first <paramref name="positions"/> cached positions from each shard of <paramref name="from"/> that
    /// <paramref name="to"/> replaces to its replacement (same stage, same layers), in chunks below the message limit,
    /// so that the move costs a copy instead of a replay of the whole history; shards both routes share keep their
    /// cache. Returns the positions every stage of <paramref name="to"/> now holds, or 0 when a copy failed (a shard
    /// with its cache on a GPU, another element type, a shard gone): the session then replays, as before.
    /// </summary>
    private async Task<int> CopyKv(Route from, Route to, int positions, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            await CopyKvRange(from, to, TurnEpoch, 0, positions, cancellation);
            LogKvCopied(logger, Id, positions, clock.Elapsed.TotalMilliseconds);
            return positions;
        }
        catch (Exception e) when (e is StrataException or TimeoutException or OrleansException)
        {
            LogKvCopyFailed(logger, Id, Describe(e));
            return 0;
        }
    }

    /// <summary>Copies positions [<paramref name="start"/>, <paramref name="end"/>) from each shard of
    /// <paramref name="from"/> that <paramref name="to"/> replaces to its replacement, reserved under
    /// <paramref name="epoch"/>.</summary>
    private Task CopyKvRange(Route from, Route to, long epoch, int start, int end, CancellationToken cancellation) =>
        Task.WhenAll(to.ShardKeys.Select(async (key, stage) =>
        {
            if (stage >= from.ShardKeys.Count || from.ShardKeys[stage] == key) return;
            var source = grains.GetGrain<IShardGrain>(from.ShardKeys[stage]);
            var target = grains.GetGrain<IShardGrain>(key);
            for (int at = start; at < end;)
            {
                cancellation.ThrowIfCancellationRequested();
                var chunk = await source.ExportKv(Id, at, end - at);
                at = await target.ImportKv(Id, epoch, at, chunk);
            }
        }));

    [LoggerMessage(Level = LogLevel.Information, Message = "session {Session}: moved its KV ({Positions} positions) in {Milliseconds:F1} ms instead of replaying")]
    private static partial void LogKvCopied(ILogger logger, string session, int positions, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "session {Session}: copied its KV ({Positions} positions) to the replacements in {Milliseconds:F1} ms while it decoded on")]
    private static partial void LogKvPrepared(ILogger logger, string session, int positions, double milliseconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "session {Session}: copying its KV failed ({Error}); replaying its history instead")]
    private static partial void LogKvCopyFailed(ILogger logger, string session, string error);

    private void ReleaseMovedFrom()
    {
        if (_releaseAfterStep is not { } old) return;
        _releaseAfterStep = null;
        _ = Task.WhenAll(old.Select(k => Quietly(() => grains.GetGrain<IShardGrain>(k).Release(Id, TurnEpoch))));
    }

    /// <summary>Whether a turn is running, and which (the completed-turn count it started at).</summary>
    private long? GeneratingTurn => _busy ? state.State.CompletedTurns - (_turnCompleted ? 1 : 0) : null;
    private bool _turnCompleted;

    private async Task RunTurn(GenerateRequest request, ChannelWriter<GenerateChunk> output, Turn turn, CancellationTokenSource stop)
    {
        using var span = StrataTracing.StartSpan("session.turn");
        if (StrataTracing.Records(span)) span.SetTag("strata.session", Id).SetTag("strata.model", request.Model).SetTag("strata.history_tokens", History.Count);
        _turnCompleted = false;
        try
        {
            await Produce(request, output, turn, stop.Token);
        }
        finally
        {
            _lastActive = DateTime.UtcNow;
            _leaving = null;
            if (_preparing is { } preparing)
            {
                // The turn ended before the move was taken: what it reserved is given back (the next turn gets its route anew).
                _preparing = null;
                _ = preparing.ContinueWith(t => { if (t.IsCompletedSuccessfully && t.Result is { } p) AbandonPrepared(p); }, TaskScheduler.Current);
            }
            ReleaseMovedFrom();
            if (!turn.Completed)
            {
                // Cancelled or failed: the stages may hold a partial step; free the KV everywhere. The history
                // keeps what was generated, so a later turn replays it into fresh caches.
                await ReleaseKvCore();
            }
            else
            {
                await Park();
            }
            await Save();
            _busy = false;
            _running = null;
            stop.Dispose();
        }
    }

    /// <summary>Stores history, RNG state and turn. A storage outage (Redis restarting) must not fail the stream that
    /// just completed: the next turn's save catches up.</summary>
    private async Task Save()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            LogSaveFailed(logger, Id, e.Message);
        }
    }

    private sealed class Turn
    {
        public bool Completed { get; set; }
        public Exception? Failure { get; set; }
    }

    private async Task Produce(GenerateRequest request, ChannelWriter<GenerateChunk> output, Turn turn, CancellationToken cancellation)
    {
        try
        {
            await Decode(request, output, turn, cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // the consumer went away
        }
        catch (Exception e)
        {
            turn.Failure = e;
        }
        finally
        {
            output.TryComplete();
        }
    }

    private async Task Decode(GenerateRequest request, ChannelWriter<GenerateChunk> output, Turn turn, CancellationToken cancellation)
    {
        long started = Stopwatch.GetTimestamp(), lastToken = started;
        var route = await WithRetries(() => grains.GetGrain<IModelGrain>(request.Model).GetRoute(_route?.ShardKeys), cancellation);
        if (_route is not null && !_route.ShardKeys.SequenceEqual(route.ShardKeys)) { await ReleaseKvCore(); }
        _route = route;
        SessionModel = request.Model;
        var tokenizer = tokenizers.Get(route.PackagePath);
        string input = request.Messages is null ? "prompt" : "messages";
        if (request.Messages is { } messages)
            request = request with { Prompt = tokenizers.RenderChat(route.PackagePath, request.Model, messages), Messages = null };
        var resume = request.Resume;
        if (resume is not null && ResumeFromStore(request, resume, tokenizer, output, turn)) return;
        int historyStart = History.Count;

        int[] added;
        try
        {
            added = request.PromptIds ?? tokenizer.Encode(request.Prompt, addBos: History.Count == 0);
        }
        catch (Models.ModelFormatException e)
        {
            // The tokenizer's files are wrong for this text: a request error with what the tokenizer said (the
            // exception itself has no codec, so it would reach the client without its message).
            throw new StrataException(ErrorCodes.InvalidPrompt,
                $"the tokenizer of model '{request.Model}' cannot encode the {input} ({tokenizers.Scrub(e.Message)}); change the text or fix the model's tokenizer files");
        }
        foreach (int id in added)
            if ((uint)id >= (uint)tokenizer.VocabSize)
                throw new StrataException(ErrorCodes.InvalidRequest, $"prompt token id {id} is outside the vocabulary (size {tokenizer.VocabSize})");
        if (History.Count + added.Length == 0)
            throw new StrataException(ErrorCodes.InvalidRequest, "the prompt is empty and the model has no BOS token");
        if (History.Count + added.Length > route.MaxContext)
            throw new StrataException(ErrorCodes.ContextOverflow,
                $"the conversation needs {History.Count + added.Length} positions but the deployment's max context is {route.MaxContext}");
        int promptTokens = added.Length;
        var tags = new TagList { { "model", request.Model } };
        StrataMetrics.PromptTokens.Add(promptTokens, tags);
        TurnEpoch++;
        route = await ReserveOrFailover(route, cancellation); // the prompt joins the history only once the turn is admitted
        History.AddRange(added);
        int cachedAtStart = _cached;

        if (resume?.RngState is { } resumed) Rng = resumed;
        else if (request.Seed is ulong || Rng is null)
            Rng = new Xoshiro256StarStar(request.Seed ?? (ulong)Random.Shared.NextInt64()).GetState();
        state.State.Sampling = request.Sampling;
        var stopIds = (request.IgnoreEos ? request.StopIds : tokenizer.EosIds.Concat(request.StopIds)).Distinct().ToArray();
        var stop = new StopChecker(stopIds, request.StopStrings, request.MaxNewTokens);
        var decoder = tokenizer.CreateStreamingDecoder();
        int generated = 0, rebuilds = 0, failovers = 0;
        var info = new TurnInfo(state.State.CompletedTurns, historyStart);
        if (resume is not null)
        {
            // What the client already has goes into the history, the stop checker and the decoder as it did the
            // first time, so that what follows is what the unbroken stream would have sent.
            foreach (int token in resume.Received)
            {
                History.Add(token);
                stop.Append(token, decoder.Push(token));
            }
            generated = resume.Received.Length;
        }
        double slack = 1;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            // A drain's move: once the replacements hold the cache so far (or at once, without a copy being made).
            if (_leaving is { } leaving && _preparing is not { IsCompleted: false })
            {
                _leaving = null;
                var prepared = _preparing is { } ready ? await ready : null;
                _preparing = null;
                if (route.ShardKeys.Any(leaving.Contains)) route = await Relocate(route, leaving, prepared, cancellation);
                else if (prepared is not null) AbandonPrepared(prepared);
            }
            // A long prompt goes in steps of at most PrefillChunk tokens (activation messages stay small); all but
            // the last only fill the caches. Over several stages they go out together (PipelinedPrompt).
            int perStep = PromptChunk(route, History.Count - _cached);
            bool fillOnly = History.Count - _cached > perStep;
            int[] pending = History.GetRange(_cached, fillOnly ? perStep : History.Count - _cached).ToArray();
            var first = grains.GetGrain<IShardGrain>(route.ShardKeys[0]);
            using var stepSpan = StrataTracing.StartSpan("session.step");
            if (StrataTracing.Records(stepSpan))
                stepSpan.SetTag("strata.position", _cached).SetTag("strata.tokens", pending.Length).SetTag("strata.fill_only", fillOnly)
                    .SetTag("strata.route_version", route.Version);
            StepResult result;
            long sent = Stopwatch.GetTimestamp();
            try
            {
                if (fillOnly && route.ShardKeys.Count > 1 && options.Value.Pipelining)
                    result = await PipelinedPrompt(first, route, perStep, request, slack, cancellation);
                else
                {
                    result = await first.Step(new StepRequest(Id, _cached, pending.Length, pending, null, "", request.Sampling, Rng!, TurnEpoch, fillOnly, route.ShardKeys))
                        .WaitAsync(deadlines.For(request.Model, pending.Length, slack), cancellation);
                    deadlines.Record(request.Model, pending.Length, Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
                    if (fillOnly)
                    {
                        _cached += pending.Length;
                        continue;
                    }
                }
            }
            catch (StrataException e) when (e.Code == ErrorCodes.KvLost && rebuilds < MaxKvRebuilds)
            {
                // A stage dropped this session's KV (idle expiry, eviction): take slots again and replay the history.
                rebuilds++;
                await ReleaseKvCore();
                await Reserve(route, cancellation);
                continue;
            }
            catch (Exception e) when (IsRouteLoss(e) && failovers < MaxFailovers && !cancellation.IsCancellationRequested)
            {
                failovers++;
                LogFailover(logger, Id, string.Join(", ", route.ShardKeys), Describe(e));
                var replacement = await Failover(route, cancellation);
                // Every shard still answered: the step was only slow. Give later steps of this turn more time.
                if (replacement.ShardKeys.SequenceEqual(route.ShardKeys)) slack *= 2;
                route = replacement;
                continue;
            }
            ReleaseMovedFrom(); // a token came back on the new route: the shards moved off are done with
            _cached = History.Count;
            Rng = result.RngState;
            History.Add(result.Token);
            _lastActive = DateTime.UtcNow;
            generated++;
            long now = Stopwatch.GetTimestamp();
            (generated == 1 ? StrataMetrics.TimeToFirstToken : StrataMetrics.InterTokenLatency)
                .Record(Stopwatch.GetElapsedTime(lastToken, now).TotalSeconds, tags);
            lastToken = now;
            StrataMetrics.GenerationTokens.Add(1, tags);

            var decision = stop.Append(result.Token, decoder.Push(result.Token));
            bool full = !decision.IsStopped && _cached >= route.MaxContext;
            if (decision.IsStopped || full)
            {
                string tail = decision.StopString is null ? decision.Text + (full ? stop.Flush() : "") + decoder.Flush() : decision.Text;
                turn.Completed = true;
                _turnCompleted = true;
                state.State.CompletedTurns++;
                (state.State.LastTurnStart, state.State.LastTurnPrompt, state.State.LastFinish) =
                    (historyStart, promptTokens, decision.FinishReason ?? FinishReasons.Length);
                StrataMetrics.E2ERequestLatency.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
                output.TryWrite(new GenerateChunk(tail, [result.Token], decision.FinishReason ?? FinishReasons.Length,
                    new Usage(promptTokens, generated, cachedAtStart), generated == 1 && resume is null ? added : null, Rng, info));
                return;
            }
            output.TryWrite(new GenerateChunk(decision.Text, [result.Token], null, null, generated == 1 && resume is null ? added : null, Rng, info));
        }
    }

    /// <summary>Fewest prompt tokens in one step of a pipelined prompt: smaller chunks cost more per token than the
    /// overlap of the stages gains.</summary>
    private const int MinPipelinedChunk = 64;

    /// <summary>Tokens per step for the <paramref name="remaining"/> uncached tokens: at most PrefillChunk; over several
    /// stages (pipelining on) small enough that the prompt makes twice as many steps as there are stages, so that
    /// every stage has a chunk to compute while the next arrive.</summary>
    private int PromptChunk(Route route, int remaining)
    {
        int max = options.Value.PrefillChunk;
        int stages = route.ShardKeys.Count;
        if (!options.Value.Pipelining || stages < 2 || remaining <= MinPipelinedChunk) return max;
        int chunk = (remaining + 2 * stages - 1) / (2 * stages);
        return Math.Clamp(chunk, Math.Min(MinPipelinedChunk, max), max);
    }

    /// <summary>
    /// Sends the rest of the prompt (everything not cached) as steps of <paramref name="perStep"/> tokens all at once,
    /// the last one sampling, and returns its result: stage 0 computes chunk k+1 while stage 1 computes chunk k, so a
    /// long prompt costs about one pass of the slowest stage plus a chunk per further stage instead of the sum of the
    /// stages. Every stage runs a session's steps in arrival order, and steps sent in order arrive in order; a step
    /// that arrived early anyway finds its positions missing and fails as lost KV, which rebuilds the cache (exact,
    /// only slower). The cache count advances as each chunk's step returns, so a failure part-way replays the rest.
    /// </summary>
    private async Task<StepResult> PipelinedPrompt(IShardGrain first, Route route, int perStep, GenerateRequest request, double slack,
        CancellationToken cancellation)
    {
        var chunks = new List<(int Start, int Count)>();
        for (int at = _cached; at < History.Count; at += perStep) chunks.Add((at, Math.Min(perStep, History.Count - at)));
        long sent = Stopwatch.GetTimestamp();
        var steps = chunks.Select((c, i) =>
        {
            bool fill = i < chunks.Count - 1;
            int[] tokens = History.GetRange(c.Start, c.Count).ToArray();
            return first.Step(new StepRequest(Id, c.Start, c.Count, tokens, null, "", request.Sampling, Rng!, TurnEpoch, fill, route.ShardKeys));
        }).ToArray();
        int total = History.Count - _cached;
        var deadline = deadlines.For(request.Model, total, slack);
        try
        {
            StepResult result = null!;
            for (int i = 0; i < steps.Length; i++)
            {
                var left = deadline - Stopwatch.GetElapsedTime(sent);
                result = await steps[i].WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero, cancellation);
                if (i < steps.Length - 1) _cached += chunks[i].Count;
            }
            deadlines.Record(request.Model, total, Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
            return result;
        }
        catch
        {
            // The steps still out end by themselves (refused as stale once the session moves on); nothing waits on them.
            foreach (var step in steps) _ = step.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>
    /// Prepares a resumed turn from what is stored. The turn never completed (stored turns == its turn): the history
    /// goes back to where the turn began and the turn runs again with the received tokens in place (false: go on).
    /// It completed and was stored, but the client missed its end: the rest is sent from the history (true: done).
    /// </summary>
    private bool ResumeFromStore(GenerateRequest request, TurnResume resume, Models.Tokenization.ITokenizer tokenizer,
        ChannelWriter<GenerateChunk> output, Turn turn)
    {
        var stored = state.State;
        if (stored.CompletedTurns == resume.Turn && History.Count >= resume.HistoryStart)
        {
            History.RemoveRange(resume.HistoryStart, History.Count - resume.HistoryStart);
            if (request.MaxNewTokens <= resume.Received.Length)
                throw new StrataException(ErrorCodes.InvalidRequest, $"the turn to resume already has its {request.MaxNewTokens} tokens");
            return false;
        }
        if (stored.CompletedTurns == resume.Turn + 1 && stored.LastTurnStart == resume.HistoryStart)
        {
            int first = stored.LastTurnStart + stored.LastTurnPrompt;
            int from = first + resume.Received.Length;
            if (from > History.Count || !History.Skip(first).Take(resume.Received.Length).SequenceEqual(resume.Received))
                throw new StrataException(ErrorCodes.InvalidRequest, $"session {Id}: the tokens the client received do not match turn {resume.Turn}");
            var decoder = tokenizer.CreateStreamingDecoder();
            foreach (int t in resume.Received) decoder.Push(t);
            var rest = History.Skip(from).ToArray();
            string text = string.Concat(rest.Select(decoder.Push)) + decoder.Flush();
            turn.Completed = true;
            output.TryWrite(new GenerateChunk(text, rest, stored.LastFinish ?? FinishReasons.Length,
                new Usage(stored.LastTurnPrompt, History.Count - first, 0), null, Rng, new TurnInfo(resume.Turn, resume.HistoryStart)));
            return true;
        }
        throw new StrataException(ErrorCodes.InvalidRequest,
            $"session {Id} cannot resume turn {resume.Turn}: it has completed {stored.CompletedTurns} turn(s)");
    }

    /// <summary>A failure of the route rather than of the request: a stage lost, unreachable, unloaded or too slow.</summary>
    private static bool IsRouteLoss(Exception e) =>
        e is TimeoutException or OrleansException || e is StrataException { Code: ErrorCodes.StageFailed or ErrorCodes.ModelNotReady };

    /// <summary>
    /// Moves the turn to a route that serves: the model grain probes the shards and re-plans a lost stage (or
    /// hands out another replica). The slots on shards the new route leaves are given back without waiting (their
    /// silo may be gone); the session reserves on the new route under a new turn epoch, so a late step of the old
    /// route cannot write into the new caches, and replays its whole history: the token that failed is sampled
    /// again from the same RNG state, so the output is the one the stream would have had.
    /// </summary>
    private async Task<Route> Failover(Route lost, CancellationToken cancellation)
    {
        for (int attempt = 1; ; attempt++)
        {
            // A silo of the route whose process is gone is declared dead now, so that the model grain's probe and
            // re-plan see it gone rather than wait for a timeout.
            await Task.WhenAll(lost.ShardKeys.Select(k => peers.Suspect(Placement.ShardKeys.Silo(k))));
            var route = await WithRetries(() => grains.GetGrain<IModelGrain>(lost.Model).ReportLost(lost.ShardKeys), cancellation);
            var left = lost.ShardKeys.Except(route.ShardKeys).ToArray();
            _ = Task.WhenAll(left.Select(k => Quietly(() => grains.GetGrain<IShardGrain>(k).Release(Id, TurnEpoch))));
            SwitchTo(route);
            try
            {
                await Reserve(route, cancellation);
                return route;
            }
            catch (Exception e) when (IsRouteLoss(e) && attempt < MaxFailovers && !cancellation.IsCancellationRequested)
            {
                // A shard of the new route was lost too (another silo died while the route was repaired): report
                // this route and take the next.
                LogFailover(logger, Id, string.Join(", ", route.ShardKeys), Describe(e));
                lost = route;
            }
        }
    }

    /// <summary>Makes <paramref name="route"/> the session's route before it reserves there: nothing is cached on it
    /// as far as the session counts, and a new turn epoch makes the stages refuse late steps sent on the old one.</summary>
    private void SwitchTo(Route route)
    {
        _route = route;
        _holdsKv = false;
        _cached = 0;
        TurnEpoch++;
    }

    /// <summary>Takes slots on <paramref name="route"/>; a shard lost on the way (its silo died since the route was
    /// handed out) sends the session to <see cref="Failover"/> for a route that serves.</summary>
    private async Task<Route> ReserveOrFailover(Route route, CancellationToken cancellation)
    {
        try
        {
            await Reserve(route, cancellation);
            return route;
        }
        catch (Exception e) when (IsRouteLoss(e) && !cancellation.IsCancellationRequested)
        {
            LogFailover(logger, Id, string.Join(", ", route.ShardKeys), Describe(e));
            return await Failover(route, cancellation);
        }
    }

    private async Task Quietly(Func<Task> call)
    {
        try { await call().WaitAsync(options.Value.ShardProbeTimeout); }
        catch (Exception e) when (e is not OutOfMemoryException) { /* the stage is gone, and its KV with it */ }
    }

    /// <summary>Calls the model grain, retrying while the cluster settles after a loss (the grain's silo or a part of
    /// the grain directory may have gone with it): up to about a minute, with backoff.</summary>
    private async Task<T> WithRetries<T>(Func<Task<T>> call, CancellationToken cancellation)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        var giveUp = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is TimeoutException or OrleansException && DateTime.UtcNow < giveUp)
            {
                LogRetry(logger, Id, Describe(e));
                _ = peers.Sweep(); // the model grain's silo may be gone: declared dead, the grain reactivates elsewhere
                await Task.Delay(delay, cancellation);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    private static string Describe(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n', 2)[0]}";

    [LoggerMessage(Level = LogLevel.Information, Message = "session {Session}: moving off a leaving shard: route {From} -> {To}")]
    private static partial void LogMove(ILogger logger, string session, string from, string to);

    [LoggerMessage(Level = LogLevel.Warning, Message = "session {Session}: route {Route} failed ({Error}); re-routing and replaying")]
    private static partial void LogFailover(ILogger logger, string session, string route, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "session {Session}: the model grain did not answer ({Error}); retrying")]
    private static partial void LogRetry(ILogger logger, string session, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "session {Session}: saving its state failed ({Error}); the next turn saves again")]
    private static partial void LogSaveFailed(ILogger logger, string session, string error);

    /// <summary>Takes a KV slot at every stage, in stage order, waiting in each stage's admission queue as needed
    /// (a slot kept from the last turn is taken back at once). When a stage had evicted the session's cache, the
    /// turn rebuilds it from the history. When a stage refuses, every slot is given back.</summary>
    private async Task Reserve(Route route, CancellationToken cancellation)
    {
        bool kept = _holdsKv;
        try
        {
            foreach (var key in route.ShardKeys)
                kept &= await grains.GetGrain<IShardGrain>(key).Reserve(Id, TurnEpoch, cancellation);
        }
        catch
        {
            _holdsKv = true; // so that ReleaseKv frees whatever was taken
            await ReleaseKvCore();
            throw;
        }
        _holdsKv = true;
        if (!kept) _cached = 0;
    }

    /// <summary>Between turns the stages keep the cache but may give the slot to a waiting session.</summary>
    private async Task Park()
    {
        if (_route is not { } route || !_holdsKv) return;
        // A stage that is gone is found out by the next turn.
        await Task.WhenAll(route.ShardKeys.Select(k => Quietly(() => grains.GetGrain<IShardGrain>(k).Park(Id))));
    }

    private static void Validate(GenerateRequest r)
    {
        static StrataException Bad(string m) => new(ErrorCodes.InvalidRequest, m);
        if (string.IsNullOrWhiteSpace(r.Model)) throw Bad("model is required");
        if (r.MaxNewTokens < 1) throw Bad($"max_new_tokens must be >= 1, got {r.MaxNewTokens}");
        if (r.Sampling is null) throw Bad("sampling is required");
        if (!(r.Sampling.Temperature >= 0) || double.IsInfinity(r.Sampling.Temperature)) throw Bad($"temperature must be >= 0, got {r.Sampling.Temperature}");
        if (r.Sampling.TopK < 0) throw Bad($"top_k must be >= 0, got {r.Sampling.TopK}");
        if (!(r.Sampling.TopP > 0 && r.Sampling.TopP <= 1)) throw Bad($"top_p must be in (0, 1], got {r.Sampling.TopP}");
        if (r.Prompt is null || r.StopStrings is null || r.StopIds is null) throw Bad("prompt, stop strings and stop ids must not be null");
        if (r.StopStrings.Any(string.IsNullOrEmpty)) throw Bad("stop strings must not be empty");
        // Bounds on what any cluster client can send (the gateway has tighter, configurable ones).
        if (r.MaxNewTokens > Limits.MaxNewTokens) throw Bad($"max_new_tokens must be at most {Limits.MaxNewTokens}, got {r.MaxNewTokens}");
        if (r.Prompt.Length > Limits.MaxPromptChars) throw Bad($"the prompt must be at most {Limits.MaxPromptChars} characters, got {r.Prompt.Length}");
        if (r.PromptIds is { Length: > Limits.MaxPromptTokens }) throw Bad($"the prompt must be at most {Limits.MaxPromptTokens} token ids, got {r.PromptIds.Length}");
        if (r.StopStrings.Length > Limits.MaxStops || r.StopIds.Length > Limits.MaxStops)
            throw Bad($"at most {Limits.MaxStops} stop strings and {Limits.MaxStops} stop ids, got {r.StopStrings.Length} and {r.StopIds.Length}");
        if (r.StopStrings.Any(x => x.Length > Limits.MaxStopLength)) throw Bad($"stop strings must be at most {Limits.MaxStopLength} characters");
        if (r.Messages is { } m)
        {
            if (m.Length is 0 or > Limits.MaxMessages) throw Bad($"messages must number 1 to {Limits.MaxMessages}, got {m.Length}");
            if (m.Any(x => x is null || x.Role is null || x.Content is null)) throw Bad("every message needs a role and content");
            if (m.Sum(x => (long)x.Content.Length) > Limits.MaxPromptChars) throw Bad($"the messages must be at most {Limits.MaxPromptChars} characters together");
        }
        if (r.Resume is { } resume)
        {
            if (resume.RngState is { } rng && (rng.Length != Xoshiro256StarStar.StateLength || rng.All(w => w == 0)))
                throw Bad($"resume RNG state must be {Xoshiro256StarStar.StateLength} words, not all zero, got {rng.Length}");
            if (resume.Received is null || resume.Received.Length > r.MaxNewTokens) throw Bad("resume must list at most max_new_tokens received tokens");
            if (resume.HistoryStart < 0 || resume.Turn < 0) throw Bad("resume turn and history start must be >= 0");
        }
    }

    /// <summary>Upper bounds on a request from any cluster client.</summary>
    internal static class Limits
    {
        public const int MaxNewTokens = 1 << 20;
        public const int MaxPromptChars = 4 << 20;
        public const int MaxPromptTokens = 1 << 20;
        public const int MaxStops = 64;
        public const int MaxStopLength = 1024;
        public const int MaxMessages = 4096;
    }
}
