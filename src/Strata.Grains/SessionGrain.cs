using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Engine.Sampling;
using Strata.Engine.Serving;

namespace Strata.Grains;

/// <summary>
/// A conversation. It owns the token history, the RNG state and a KV lease at every stage; it runs the decode
/// loop (step through the shard chain, detokenize, check stops) and streams chunks. A follow-up turn sends only the
/// tokens the stages have not cached yet. Cancelling a turn, going idle past the TTL or deactivating releases the
/// KV everywhere; the history stays, so a later turn rebuilds the cache.
/// </summary>
internal sealed class SessionGrain(IGrainFactory grains, TokenizerCache tokenizers, IOptions<StrataSiloOptions> options)
    : Grain, ISessionGrain
{
    private readonly List<int> _history = [];
    private string? _model;
    private Route? _route;
    private int _cached;          // positions every stage holds in KV
    private bool _holdsKv;
    private ulong[]? _rng;
    private bool _busy;
    private DateTime _lastActive = DateTime.UtcNow;
    private IGrainTimer? _ttlTimer;
    private long _turn;           // epoch of the current turn; the stages refuse steps of another one
    private const int MaxKvRebuilds = 2;

    private string Id => this.GetPrimaryKeyString();

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var ttl = options.Value.SessionKvTtl;
        var period = TimeSpan.FromTicks(Math.Max(TimeSpan.FromSeconds(1).Ticks, ttl.Ticks / 4));
        _ttlTimer = this.RegisterGrainTimer(async () =>
        {
            if (_holdsKv && !_busy && DateTime.UtcNow - _lastActive > ttl) await ReleaseKv();
        }, new GrainTimerCreationOptions(period, period) { Interleave = true });
        return Task.CompletedTask;
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _ttlTimer?.Dispose();
        await ReleaseKv();
    }

    public Task<SessionInfo> GetInfo() => Task.FromResult(new SessionInfo(Id, _model, _history.Count, _cached, _holdsKv));

    public async Task ReleaseKv()
    {
        var route = _route;
        bool held = _holdsKv;
        _holdsKv = false;
        _cached = 0;
        if (route is null || !held) return;
        await Task.WhenAll(route.ShardKeys.Select(async k =>
        {
            try { await grains.GetGrain<IShardGrain>(k).Release(Id); }
            catch (Exception e) when (e is not OutOfMemoryException) { /* the stage is gone, and its KV with it */ }
        }));
    }

    public async IAsyncEnumerable<GenerateChunk> GenerateAsync(GenerateRequest request, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        Validate(request);
        if (_busy) throw new StrataException(ErrorCodes.InvalidRequest, $"session {Id} is already generating; wait for the turn to finish");
        if (_model is not null && _model != request.Model)
            throw new StrataException(ErrorCodes.InvalidRequest, $"session {Id} belongs to model '{_model}', not '{request.Model}'");
        _busy = true;

        // The decode loop runs ahead of the consumer: steps do not wait for the client to pull each chunk.
        var chunks = Channel.CreateUnbounded<GenerateChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var turn = new Turn();
        var producer = Produce(request, chunks.Writer, turn, stop.Token);
        try
        {
            await foreach (var chunk in chunks.Reader.ReadAllAsync(cancellation))
                yield return chunk;
            if (turn.Failure is not null) ExceptionDispatchInfo.Throw(turn.Failure);
        }
        finally
        {
            await stop.CancelAsync();
            await producer;
            _busy = false;
            _lastActive = DateTime.UtcNow;
            if (!turn.Completed)
            {
                // Cancelled or failed: the stages may hold a partial step; free the KV everywhere. The history
                // keeps what was generated, so a later turn replays it into fresh caches.
                await ReleaseKv();
            }
            else
            {
                await Park();
            }
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
        var route = await grains.GetGrain<IModelGrain>(request.Model).GetRoute();
        if (_route is not null && _route.Version != route.Version) { await ReleaseKv(); }
        _route = route;
        _model = request.Model;
        var tokenizer = tokenizers.Get(route.PackagePath);

        int[] added = request.PromptIds ?? tokenizer.Encode(request.Prompt, addBos: _history.Count == 0);
        foreach (int id in added)
            if ((uint)id >= (uint)tokenizer.VocabSize)
                throw new StrataException(ErrorCodes.InvalidRequest, $"prompt token id {id} is outside the vocabulary (size {tokenizer.VocabSize})");
        if (_history.Count + added.Length == 0)
            throw new StrataException(ErrorCodes.InvalidRequest, "the prompt is empty and the model has no BOS token");
        if (_history.Count + added.Length > route.MaxContext)
            throw new StrataException(ErrorCodes.ContextOverflow,
                $"the conversation needs {_history.Count + added.Length} positions but the deployment's max context is {route.MaxContext}");
        int promptTokens = added.Length;
        var tags = new TagList { { "model", request.Model } };
        StrataMetrics.PromptTokens.Add(promptTokens, tags);
        _turn++;
        await Reserve(route, cancellation); // the prompt joins the history only once the turn is admitted
        _history.AddRange(added);
        int cachedAtStart = _cached;

        if (request.Seed is ulong || _rng is null)
            _rng = new Xoshiro256StarStar(request.Seed ?? (ulong)Random.Shared.NextInt64()).GetState();
        var stopIds = (request.IgnoreEos ? request.StopIds : tokenizer.EosIds.Concat(request.StopIds)).Distinct().ToArray();
        var stop = new StopChecker(stopIds, request.StopStrings, request.MaxNewTokens);
        var decoder = tokenizer.CreateStreamingDecoder();
        var first = grains.GetGrain<IShardGrain>(route.ShardKeys[0]);
        int generated = 0, rebuilds = 0;
        while (true)
        {
            cancellation.ThrowIfCancellationRequested();
            // A long prompt goes in steps of at most PrefillChunk tokens (activation messages stay small); all but
            // the last only fill the caches.
            int perStep = options.Value.PrefillChunk;
            bool fillOnly = _history.Count - _cached > perStep;
            int[] pending = _history.GetRange(_cached, fillOnly ? perStep : _history.Count - _cached).ToArray();
            StepResult result;
            try
            {
                result = await first.Step(new StepRequest(Id, _cached, pending.Length, pending, null, "", request.Sampling, _rng, _turn, fillOnly))
                    .WaitAsync(options.Value.StepTimeout, cancellation);
                if (fillOnly)
                {
                    _cached += pending.Length;
                    continue;
                }
            }
            catch (StrataException e) when (e.Code == ErrorCodes.KvLost && rebuilds < MaxKvRebuilds)
            {
                // A stage dropped this session's KV (idle expiry, eviction): take slots again and replay the history.
                rebuilds++;
                await ReleaseKv();
                await Reserve(route, cancellation);
                continue;
            }
            _cached = _history.Count;
            _rng = result.RngState;
            _history.Add(result.Token);
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
                StrataMetrics.E2ERequestLatency.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
                output.TryWrite(new GenerateChunk(tail, [result.Token], decision.FinishReason ?? FinishReasons.Length,
                    new Usage(promptTokens, generated, cachedAtStart), generated == 1 ? added : null));
                return;
            }
            output.TryWrite(new GenerateChunk(decision.Text, [result.Token], null, null, generated == 1 ? added : null));
        }
    }

    /// <summary>Takes a KV slot at every stage, in stage order, waiting in each stage's admission queue as needed
    /// (a slot kept from the last turn is taken back at once). When a stage had evicted the session's cache, the
    /// turn rebuilds it from the history. When a stage refuses, every slot is given back.</summary>
    private async Task Reserve(Route route, CancellationToken cancellation)
    {
        bool kept = _holdsKv;
        try
        {
            foreach (var key in route.ShardKeys)
                kept &= await grains.GetGrain<IShardGrain>(key).Reserve(Id, _turn, cancellation);
        }
        catch
        {
            _holdsKv = true; // so that ReleaseKv frees whatever was taken
            await ReleaseKv();
            throw;
        }
        _holdsKv = true;
        if (!kept) _cached = 0;
    }

    /// <summary>Between turns the stages keep the cache but may give the slot to a waiting session.</summary>
    private async Task Park()
    {
        if (_route is not { } route || !_holdsKv) return;
        await Task.WhenAll(route.ShardKeys.Select(async k =>
        {
            try { await grains.GetGrain<IShardGrain>(k).Park(Id); }
            catch (Exception e) when (e is not OutOfMemoryException) { /* the stage is gone; the next turn finds out */ }
        }));
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
        if (r.StopStrings.Any(string.IsNullOrEmpty)) throw Bad("stop strings must not be empty");
    }
}
