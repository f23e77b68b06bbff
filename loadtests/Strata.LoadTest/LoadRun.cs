using System.Diagnostics;
using System.Globalization;
using Strata.Client;
using Strata.Contracts;

namespace Strata.LoadTest;

/// <summary>Everything a run measured.</summary>
internal sealed record RunResult(IReadOnlyList<RequestResult> Requests, double WallSeconds, string RunId, double StartedUnixMs = 0);

/// <summary>Sends the requests (closed loop or Poisson arrivals) and times every chunk.</summary>
internal sealed class LoadRun(LoadTestOptions options, StrataClient client, string model, int vocab)
{
    private readonly Stopwatch _clock = new();
    private int _done, _failed;
    private long _tokens;

    private double Now => _clock.Elapsed.TotalMilliseconds;

    /// <summary>The synthetic prompts: ids in [3, vocab) from an RNG seeded with the run's seed (0-2 are the usual
    /// special ids).</summary>
    public static int[][] Prompts(int count, int length, int vocab, ulong seed)
    {
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, length).Select(_ => rng.Next(3, vocab)).ToArray()).ToArray();
    }

    /// <summary>Send offsets in seconds from the start: exponential gaps with mean 1/rate (Poisson arrivals) from
    /// an RNG seeded with the run's seed plus one; all zero for an infinite rate.</summary>
    public static double[] ArrivalOffsets(int count, double rate, ulong seed)
    {
        var offsets = new double[count];
        if (double.IsPositiveInfinity(rate)) return offsets;
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32)) + 1));
        double t = 0;
        for (int i = 0; i < count; i++)
        {
            offsets[i] = t;
            t += -Math.Log(1 - rng.NextDouble()) / rate;
        }
        return offsets;
    }

    public async Task<RunResult> ExecuteAsync(TextWriter progress, bool redraw, CancellationToken ct)
    {
        if (vocab <= 3) throw new UsageException($"the vocabulary ({vocab}) must be larger than 3");
        string runId = Guid.NewGuid().ToString("N")[..8];
        var prompts = Prompts(options.Requests, options.PromptTokens, vocab, options.Seed);
        var results = new RequestResult[options.Requests];
        using var stopProgress = CancellationTokenSource.CreateLinkedTokenSource(ct);
        double startedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        _clock.Start();
        var reporter = ReportProgressAsync(progress, redraw, stopProgress.Token);

        if (options.ClosedLoop)
        {
            int next = -1;
            await Task.WhenAll(Enumerable.Range(0, options.Clients).Select(_ => Task.Run(async () =>
            {
                for (int i = Interlocked.Increment(ref next); i < options.Requests; i = Interlocked.Increment(ref next))
                    results[i] = await SendAsync(runId, i, prompts[i], ct);
            }, ct)));
        }
        else
        {
            var offsets = ArrivalOffsets(options.Requests, options.Rate!.Value, options.Seed);
            var inFlight = new List<Task>(options.Requests);
            for (int i = 0; i < options.Requests; i++)
            {
                double wait = offsets[i] * 1000 - Now;
                if (wait > 1) await Task.Delay(TimeSpan.FromMilliseconds(wait), ct);
                int index = i;
                inFlight.Add(Task.Run(async () => results[index] = await SendAsync(runId, index, prompts[index], ct), ct));
            }
            await Task.WhenAll(inFlight);
        }
        double wall = _clock.Elapsed.TotalSeconds;
        await stopProgress.CancelAsync();
        await reporter;
        return new RunResult(results, wall, runId, startedUnixMs);
    }

    private async Task<RequestResult> SendAsync(string runId, int index, int[] prompt, CancellationToken ct)
    {
        string session = $"load-{runId}-{index}";
        var request = new GenerateRequest
        {
            Model = model,
            PromptIds = prompt,
            MaxNewTokens = options.MaxNewTokens,
            IgnoreEos = true,
            Seed = options.Seed + (ulong)index,
        };
        var r = new RequestResult { Index = index };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.TimeoutSeconds));
        r.SentMs = Now;
        try
        {
            await foreach (var chunk in client.GenerateAsync(session, request, timeout.Token))
            {
                double t = Now;
                r.EndMs = t;
                if (chunk.FinishReason is not null) r.FinishReason = chunk.FinishReason;
                if (chunk.TokenIds.Length == 0) continue;
                r.FirstTokenMs ??= t;
                r.ChunkMs.Add(t);
                r.ChunkTokens.Add(chunk.TokenIds.Length);
                r.OutputTokens += chunk.TokenIds.Length;
                Interlocked.Add(ref _tokens, chunk.TokenIds.Length);
            }
            if (r.FirstTokenMs is null) r.Error = "NoTokens: the stream ended without a token";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            r.Error = string.Create(CultureInfo.InvariantCulture, $"Timeout: no end within {options.TimeoutSeconds:G} s");
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            r.Error = $"{e.GetType().Name}: {e.Message}";
        }
        if (r.Error is not null) r.EndMs = Now;
        if (r.Error is null) Interlocked.Increment(ref _done);
        else Interlocked.Increment(ref _failed);
        try
        {
            await client.Orleans.GetGrain<ISessionGrain>(session).ReleaseKv().WaitAsync(TimeSpan.FromSeconds(10), ct);
        }
        catch (Exception) when (!ct.IsCancellationRequested)
        {
            // The request's own outcome is what counts; a failed release shows up as later requests failing.
        }
        return r;
    }

    private async Task ReportProgressAsync(TextWriter w, bool redraw, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        long lastTokens = 0;
        double lastTime = 0;
        bool drawn = false;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                long tokens = Interlocked.Read(ref _tokens);
                double now = _clock.Elapsed.TotalSeconds;
                double rate = (tokens - lastTokens) / Math.Max(1e-9, now - lastTime);
                (lastTokens, lastTime) = (tokens, now);
                string line = string.Create(CultureInfo.InvariantCulture,
                    $"[load] {now,6:F1} s  done {Volatile.Read(ref _done) + Volatile.Read(ref _failed)}/{options.Requests}  failed {Volatile.Read(ref _failed)}  {rate:F1} output tok/s");
                drawn = true;
                if (redraw) w.Write("\r" + line.PadRight(80));
                else w.WriteLine(line);
                w.Flush();
            }
        }
        catch (OperationCanceledException)
        {
            // the run ended
        }
        if (redraw && drawn) { w.WriteLine(); w.Flush(); }
    }
}
