using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Runtime.Placement;
using Strata.Contracts;
using Strata.Contracts.Security;

namespace Strata.Client;

/// <summary>
/// What applications use to talk to a Strata cluster: deploy models, watch their state, and stream generations
/// from sessions. Wraps an Orleans client connected through Redis or to local gateways.
/// </summary>
public sealed class StrataClient : IAsyncDisposable
{
    private readonly IHost? _host;

    private readonly ClusterTls? _tls;
    private readonly string _clusterId;

    /// <summary>Gateway connections that ended (only for clients this class connected itself).</summary>
    private readonly GatewayLosses _losses;

    private StrataClient(IClusterClient client, IHost? host, ClusterTls? tls = null, string clusterId = "strata", GatewayLosses? losses = null)
    {
        _losses = losses ?? new GatewayLosses();
        Orleans = client;
        _host = host;
        _tls = tls;
        _clusterId = clusterId;
    }

    private ClusterTls? _control;

    /// <summary>
    /// Runs a control call (deploy, scale, drain) with the proof that this client holds the admin certificate
    /// (<see cref="ControlToken"/>) when it connected over TLS as an administrator; silos with TLS on refuse control
    /// calls without it.
    /// </summary>
    private async Task<T> AsAdmin<T>(Func<Task<T>> call)
    {
        if ((_control ?? _tls) is not { Role: ClusterRole.Admin or ClusterRole.Silo } signer) return await call();
        RequestContext.Set(ControlToken.Key, ControlToken.Create(signer, _clusterId, DateTimeOffset.UtcNow));
        try
        {
            return await call();
        }
        finally
        {
            RequestContext.Remove(ControlToken.Key);
        }
    }

    /// <summary>Whether this client's control calls (deploy, scale, drain) can pass: the cluster has no TLS, or the
    /// client connected with, or was given, an admin certificate.</summary>
    public bool CanControl => _tls is null || (_control ?? _tls).Role is ClusterRole.Admin or ClusterRole.Silo;

    /// <summary>Signs this client's control calls with <paramref name="admin"/> (an admin certificate of the cluster's
    /// CA) while it stays connected with its own certificate: a gateway connects as a client and controls the cluster
    /// only for its admin keys.</summary>
    public StrataClient WithControlCertificate(ClusterTls admin)
    {
        if (admin.Role != ClusterRole.Admin) throw new ArgumentException($"a control certificate must be an admin certificate, not {admin.Role}", nameof(admin));
        _control = admin;
        return this;
    }

    /// <summary>The underlying Orleans client.</summary>
    public IClusterClient Orleans { get; }

    /// <summary>Wraps an existing Orleans client (tests, the embedded demo).</summary>
    public static StrataClient FromClusterClient(IClusterClient client) => new(client, null);

    /// <summary>
    /// Connects to a cluster: through Redis membership when <paramref name="redis"/> is given, else to the local
    /// gateway ports (default 30000). Fails at once with <see cref="ClusterUnreachableException"/> (one line, no retries)
    /// when nothing answers. The client's host leaves Ctrl+C to the application.
    /// </summary>
    public static Task<StrataClient> ConnectAsync(string? redis = null, int[]? gatewayPorts = null, string clusterId = "strata",
        CancellationToken cancellation = default) => ConnectAsync(redis, gatewayPorts, clusterId, null, cancellation);

    /// <summary>Connects as <see cref="ConnectAsync(string?, int[], string, CancellationToken)"/> does, over mutual
    /// TLS with <paramref name="tls"/> when it is given (the cluster's silos must use the same certificate set).</summary>
    public static async Task<StrataClient> ConnectAsync(string? redis, int[]? gatewayPorts, string clusterId, ClusterTls? tls,
        CancellationToken cancellation = default)
    {
        int[] ports = gatewayPorts is { Length: > 0 } ? gatewayPorts : [30000];
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true, Args = [] });
        var losses = new GatewayLosses();
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true)
            .AddConsole(c => c.LogToStandardErrorThreshold = LogLevel.Trace)
            .SetMinimumLevel(LogLevel.Error)
            // A failed start is reported as one line below; the host's own report is a stack trace.
            .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        builder.UseOrleansClient(client =>
        {
            if (redis is not null) client.UseRedisClustering(redis);
            else client.UseStaticClustering(ports.Select(p => new IPEndPoint(IPAddress.Loopback, p)).ToArray());
            client.Configure<ClusterOptions>(o => { o.ClusterId = clusterId; o.ServiceId = clusterId; });
            client.UseConnectionRetryFilter(static (_, _) => Task.FromResult(false));
            client.AddActivityPropagation(); // a traced request's context reaches the session and the stages
            if (tls is not null) client.UseTls(tls.Certificate, tls.Apply);
            // Every gateway connection that ends makes the running streams check their sessions at once.
            client.Configure<ClientConnectionOptions>(o => o.ConfigureConnection(b => b.Use(next => async context =>
            {
                try
                {
                    await next(context);
                }
                finally
                {
                    losses.Lost();
                }
            })));
            // A call to a silo that died waits this long before it fails (the stream of a session whose silo died,
            // for one): short, above the silos' stream heartbeat (half their 6 s call timeout). Long operations
            // carry their own timeouts.
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(5));
        });
        builder.Services.AddSingleton<IHostLifetime, PassiveHostLifetime>();
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
        {
            host.Dispose();
            // Orleans throws several types here (connection refused, gateway rejected the cluster id, Redis down);
            // all of them mean the same to a user: nothing usable answered at that address.
            string where = redis is not null ? $"Redis {redis}" : string.Join(", ", ports.Select(p => $"127.0.0.1:{p}"));
            string hint = tls is null ? "is a silo running? (with TLS on, give the cluster's certificates)" : "is a silo running, with the same certificate set?";
            throw new ClusterUnreachableException($"cannot reach the cluster at {where} (cluster id '{clusterId}'): {hint} ({Describe(e)})", e);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return new StrataClient(host.Services.GetRequiredService<IClusterClient>(), host, tls, clusterId, losses);
    }

    // The innermost message says what happened ("Error: ConnectionRefused"); long ones (Redis adds advice on its own
    // connection strings) are cut to their first sentence.
    private static string Describe(Exception e)
    {
        string message = e.GetBaseException().Message;
        int end = message.Length > 120 ? message.IndexOf(". ", StringComparison.Ordinal) : -1;
        return (end > 0 ? message[..end] : message).TrimEnd('.');
    }

    /// <summary>Deploys a package and waits until every stage is loaded (or one fails).</summary>
    /// <param name="model">Model name (the model grain's key).</param>
    /// <param name="request">What to deploy.</param>
    /// <param name="progress">Receives each status while loading.</param>
    /// <param name="timeout">How long to wait for loading; default 10 minutes.</param>
    /// <param name="cancellation">Cancels the wait (not the deployment).</param>
    public async Task<ModelStatus> DeployAsync(string model, DeployRequest request, IProgress<ModelStatus>? progress = null,
        TimeSpan? timeout = null, CancellationToken cancellation = default)
    {
        var grain = Orleans.GetGrain<IModelGrain>(model);
        var status = await AsAdmin(() => grain.Deploy(request));
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(10));
        while (status.State == DeploymentState.Loading)
        {
            progress?.Report(status);
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"model '{model}' is still loading after {(timeout ?? TimeSpan.FromMinutes(10)).TotalSeconds:F0} s");
            await Task.Delay(200, cancellation);
            status = await grain.GetStatus();
        }
        progress?.Report(status);
        if (status.State == DeploymentState.Failed)
            throw new StrataException(ErrorCodes.StageFailed, $"deploying '{model}' failed: {status.Error}");
        return status;
    }

    private readonly ConcurrentDictionary<string, SiloAddress> _entrySilos = new(StringComparer.Ordinal);

    /// <summary>
    /// Activates a new session on the silo of the model's first stage. Every token crosses session -> stage 0 and
    /// back; on one silo that is a local call, across silos two network hops per token (measured here: ~1.5 ms per
    /// step with the session beside stage 0 against 4-7 ms away from it). Placement hints only matter at activation,
    /// so a session that is already active stays where it is; a failure here leaves placement to Orleans.
    /// </summary>
    private async Task PlaceNearFirstStage(ISessionGrain session, string model)
    {
        try
        {
            if (!_entrySilos.TryGetValue(model, out var silo))
            {
                var status = await GetModelStatusAsync(model);
                if (status.State != DeploymentState.Ready || status.Stages.Count == 0) return;
                silo = SiloAddress.FromParsableString(status.Stages[0].Silo);
                _entrySilos[model] = silo;
            }
            RequestContext.Set(IPlacementDirector.PlacementHintKey, silo);
            try { await session.GetInfo(); }
            finally { RequestContext.Remove(IPlacementDirector.PlacementHintKey); }
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            // Placement is an optimisation: the turn itself reports real errors.
        }
    }

    /// <summary>A model's deployment state. Retried for up to <see cref="StartRetryWindow"/> while the cluster settles
    /// after the loss of a silo (the model grain or its directory entry may have gone with it).</summary>
    public Task<ModelStatus> GetModelStatusAsync(string model) => Settling(() => Orleans.GetGrain<IModelGrain>(model).GetStatus());

    /// <summary>Runs a control call, retrying with backoff while calls are refused because a silo was just lost.</summary>
    private async Task<T> Settling<T>(Func<Task<T>> call)
    {
        var giveUp = DateTime.UtcNow + StartRetryWindow;
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is OrleansMessageRejectionException or TimeoutException or global::Orleans.Runtime.Messaging.ConnectionFailedException
                                      && DateTime.UtcNow < giveUp)
            {
                await Task.Delay(delay);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    /// <summary>Runs <paramref name="call"/> with <paramref name="span"/> as the current activity (an async iterator
    /// resumes under its caller's context, so the span is set again for each call it makes).</summary>
    private static async Task<T> Traced<T>(System.Diagnostics.Activity? span, Func<Task<T>> call)
    {
        if (span is null) return await call();
        var previous = System.Diagnostics.Activity.Current;
        System.Diagnostics.Activity.Current = span;
        try
        {
            return await call();
        }
        finally
        {
            System.Diagnostics.Activity.Current = previous;
        }
    }

    /// <summary>Streams one turn of session <paramref name="sessionId"/>. While the cluster settles after the loss of
    /// a silo a call can be refused before the first chunk; the turn has then not started, and starting it is
    /// retried for up to <see cref="StartRetryWindow"/>. When the stream breaks after it began (the session grain's
    /// silo was lost or stopped), the turn is resumed from the last token received: the session, reactivated from
    /// storage, replays the turn with those tokens in place, so the caller sees no error, no duplicate and no gap.</summary>
    public async IAsyncEnumerable<GenerateChunk> GenerateAsync(string sessionId, GenerateRequest request,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var received = new List<int>();
        TurnInfo? turn = null;
        ulong[]? rng = null;
        int resumes = 0;
        var session = Orleans.GetGrain<ISessionGrain>(sessionId);
        var gaps = new GapWatch { Losses = _losses.Count };
        // The request's trace (when a tracer listens): every call that starts or resumes the turn runs under it.
        using var span = StrataTracing.StartSpan("strata.generate", System.Diagnostics.ActivityKind.Client);
        if (StrataTracing.Records(span)) span.SetTag("strata.session", sessionId).SetTag("strata.model", request.Model);
        var (stream, any) = await Traced(span, () => StartTurn(sessionId, request, cancellation));
        try
        {
            while (any)
            {
                var chunk = stream.Current;
                turn ??= chunk.Turn;
                rng = chunk.RngState ?? rng;
                received.AddRange(chunk.TokenIds);
                gaps.Chunk();
                yield return chunk;
                if (chunk.FinishReason is not null) yield break;
                var (next, error) = turn is null ? await TryMoveNext(stream) : await NextOrSilence(stream, session, turn.Turn, gaps);
                if (error is null)
                {
                    any = next;
                    continue;
                }
                if (!IsBrokenStream(error) || turn is null || ++resumes > MaxResumes || cancellation.IsCancellationRequested)
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
                _ = DisposeQuietly(stream); // its grain may be gone: do not wait on it
                span?.AddEvent(new System.Diagnostics.ActivityEvent("resume"));
                await SweepPeers();
                var resume = request with { Resume = new TurnResume(turn.Turn, turn.HistoryStart, received.ToArray(), rng) };
                (stream, any) = await Traced(span, () => StartTurn(sessionId, resume, cancellation));
            }
        }
        finally
        {
            await DisposeQuietly(stream);
        }
    }

    /// <summary>
    /// The next chunk, or a broken-stream error when the session has gone silent: once no chunk came for
    /// its quiet time (<see cref="GapWatch.Quiet"/>), or at once when one of the client's gateway connections ends, the session is asked
    /// (briefly) whether it still generates this turn. A session whose silo died does not answer, or answers from a
    /// fresh activation that generates nothing: the stream is then given up at once instead of after the response
    /// timeout, and the turn resumed. A session that is only slow (admission, a failover in progress) says so, and the
    /// wait goes on, except after a gateway was lost: a pull that went through it never gets its answer, so a stream
    /// that stays silent for its quiet time after the loss is resumed too (the session ends the run it had
    /// and continues from the tokens this client received).
    /// </summary>
    private async Task<(bool Next, Exception? Error)> NextOrSilence(IAsyncEnumerator<GenerateChunk> stream, ISessionGrain session,
        long turn, GapWatch gaps)
    {
        var next = TryMoveNext(stream);
        var quiet = gaps.Quiet;
        bool gatewayLost = false;
        while (true)
        {
            var silent = Task.Delay(quiet);
            var lost = gatewayLost ? Task.Delay(Timeout.Infinite) : _losses.Next;
            if (!gatewayLost && _losses.Count != gaps.Losses) lost = Task.CompletedTask; // lost since this stream last looked
            gaps.Losses = _losses.Count;
            var woke = await Task.WhenAny(next, silent, lost);
            if (woke == next) return await next;
            string why = $"no chunk for {quiet.TotalSeconds:F1} s";
            if (woke == lost)
            {
                gatewayLost = true;
                why = "a gateway connection was lost";
                await SweepPeers(); // the silo behind it is declared dead now if its process is gone
            }
            else if (gatewayLost)
            {
                why = $"no chunk for {quiet.TotalSeconds:F1} s after a gateway connection was lost";
                _ = next.ContinueWith(_ => DisposeQuietly(stream), TaskScheduler.Default);
                return (false, new TimeoutException($"session {session.GetPrimaryKeyString()}: {why}"));
            }
            bool generating;
            try
            {
                generating = (await session.GetInfo().WaitAsync(TimeSpan.FromSeconds(2))).GeneratingTurn == turn;
            }
            catch (Exception e) when (IsBrokenStream(e))
            {
                generating = false;
            }
            if (next.IsCompleted) return await next;
            if (!generating)
            {
                // The abandoned pull ends by itself (its grain is gone or was told to stop); the stream is disposed then.
                _ = next.ContinueWith(_ => DisposeQuietly(stream), TaskScheduler.Default);
                return (false, new TimeoutException($"session {session.GetPrimaryKeyString()} went silent ({why}) and it generates no turn"));
            }
        }
    }

    /// <summary>How long a stream may stay silent before the session is asked whether it still generates: ten times
    /// the recent gap between chunks, at least a second.</summary>
    private sealed class GapWatch
    {
        private long _last = System.Diagnostics.Stopwatch.GetTimestamp();
        private double _meanMs = double.NaN;

        /// <summary>The client's gateway losses this stream has seen (<see cref="GatewayLosses.Count"/>).</summary>
        public long Losses { get; set; }

        public void Chunk()
        {
            long now = System.Diagnostics.Stopwatch.GetTimestamp();
            double gap = System.Diagnostics.Stopwatch.GetElapsedTime(_last, now).TotalMilliseconds;
            _last = now;
            _meanMs = double.IsNaN(_meanMs) ? gap : _meanMs + 0.1 * (gap - _meanMs);
        }

        public TimeSpan Quiet => TimeSpan.FromMilliseconds(Math.Max(1000, 10 * (double.IsNaN(_meanMs) ? 100 : _meanMs)));
    }

    /// <summary>Ends a stream whose grain may be gone (its silo lost): there is nothing to tell it then.</summary>
    private static async Task DisposeQuietly(IAsyncEnumerator<GenerateChunk> stream)
    {
        try { await stream.DisposeAsync(); }
        catch (Exception e) when (e is not OutOfMemoryException) { /* nothing to tell a grain that is gone */ }
    }

    /// <summary>How many times one turn is resumed after its stream broke.</summary>
    public int MaxResumes { get; init; } = 4;

    private static async Task<(bool Next, Exception? Error)> TryMoveNext(IAsyncEnumerator<GenerateChunk> stream)
    {
        try
        {
            return (await stream.MoveNextAsync(), null);
        }
        catch (Exception e) when (IsBrokenStream(e))
        {
            return (false, e);
        }
    }

    /// <summary>The stream's grain or its silo went away (not an error of the request itself).</summary>
    private static bool IsBrokenStream(Exception e) => e is EnumerationAbortedException or OrleansException or TimeoutException;

    /// <summary>Asks the silo this client reaches first to check its peers, so that a silo whose process is gone (the
    /// session's, most likely) is declared dead now and the session reactivates elsewhere, not after the membership's
    /// missed probes. Best effort: a cluster that cannot answer within a second is settling anyway.</summary>
    private async Task SweepPeers()
    {
        try { await Orleans.GetGrain<IPeerWatchGrain>(0).Sweep().WaitAsync(TimeSpan.FromSeconds(1)); }
        catch (Exception e) when (e is TimeoutException or OrleansException) { /* membership's probes decide then */ }
    }

    /// <summary>How long starting a turn is retried while the cluster refuses calls after a silo was lost.</summary>
    public TimeSpan StartRetryWindow { get; init; } = TimeSpan.FromSeconds(45);

    private async Task<(IAsyncEnumerator<GenerateChunk> Stream, bool Any)> StartTurn(string sessionId, GenerateRequest request, CancellationToken cancellation)
    {
        var session = Orleans.GetGrain<ISessionGrain>(sessionId);
        var giveUp = DateTime.UtcNow + StartRetryWindow;
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            await PlaceNearFirstStage(session, request.Model);
            var stream = session.GenerateAsync(request, cancellation).WithBatchSize(16).GetAsyncEnumerator(cancellation);
            try
            {
                return (stream, await stream.MoveNextAsync());
            }
            catch (Exception e) when (e is OrleansMessageRejectionException or TimeoutException or global::Orleans.Runtime.Messaging.ConnectionFailedException
                                          or EnumerationAbortedException // the session's activation was lost before its first chunk
                                      && DateTime.UtcNow < giveUp)
            {
                await DisposeQuietly(stream);
                _entrySilos.TryRemove(request.Model, out _);
                await SweepPeers();
                await Task.Delay(delay, cancellation);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
            catch
            {
                await DisposeQuietly(stream);
                throw;
            }
        }
    }

    /// <summary>Drains a silo, named by its silo name (<c>--name</c>) or address: every stage it holds moves to other
    /// silos (replacement loaded first), its sessions replay there, and nothing new is placed on it. Returns when it
    /// holds no stage.</summary>
    public async Task<DrainReport> DrainAsync(string silo)
    {
        var silos = await GetSilosAsync();
        var match = silos.Where(s => s.Name == silo || s.Silo == silo || s.Silo.StartsWith(silo + "@", StringComparison.Ordinal)).ToList();
        if (match.Count != 1)
            throw new StrataException(ErrorCodes.InvalidRequest, match.Count == 0
                ? $"no active silo is named or addressed '{silo}'; active: {string.Join(", ", silos.Select(s => $"{s.Name} ({s.Silo})"))}"
                : $"'{silo}' matches {match.Count} silos; give the address");
        return await AsAdmin(() => Orleans.GetGrain<ISiloControlGrain>("silo#" + match[0].Silo).Drain());
    }

    /// <summary>Sets a model's replicas per stage (null: as many as spare capacity allows) while sessions stream.</summary>
    public Task<ModelStatus> ScaleAsync(string model, int? replicas) => Settling(() => AsAdmin(() => Orleans.GetGrain<IModelGrain>(model).Scale(replicas)));

    /// <summary>The live silos of the cluster with their status.</summary>
    public async Task<IReadOnlyList<(string Silo, string Name, string Status)>> GetSilosAsync()
    {
        var hosts = await Orleans.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: true);
        return hosts.Select(h => (h.SiloAddress.ToParsableString(), h.SiloName, h.Status.ToString())).ToArray();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_host is null) return;
        try { await _host.StopAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or OrleansException) { /* leaving anyway */ }
        finally { _host.Dispose(); }
    }
}

/// <summary>The cluster could not be reached: no silo at the gateways, Redis down, or another cluster id.</summary>
public sealed class ClusterUnreachableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A host lifetime that leaves signals alone. The default console lifetime takes Ctrl+C for itself (to stop
/// the host), so the application's own cancellation would never fire; hosts inside a tool are stopped by the tool.</summary>
public sealed class PassiveHostLifetime : IHostLifetime
{
    /// <inheritdoc />
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
