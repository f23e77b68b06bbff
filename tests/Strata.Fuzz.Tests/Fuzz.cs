using System.Collections.Concurrent;
using CsCheck;
using Xunit.Abstractions;

namespace Strata.Fuzz.Tests;

/// <summary>
/// The property every target shares: a parser given any input either returns or throws one of the project's typed
/// errors with a message that says what was wrong; it never throws anything else (IndexOutOfRange, Overflow,
/// NullReference, OutOfMemory, a bare ArgumentException...) and never runs past <see cref="CaseTimeout"/>.
/// </summary>
internal static class Fuzz
{
    /// <summary>Cases per property: <c>STRATA_FUZZ_CASES</c>, else <paramref name="fallback"/>.</summary>
    public static int Cases(int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable("STRATA_FUZZ_CASES"), out int n) && n > 0 ? n : fallback;

    /// <summary>How long one case may run before it counts as a hang (generous: the suite shares slow cores).</summary>
    public static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("STRATA_FUZZ_TIMEOUT_S"), out int s) && s > 0 ? s : 20);

    /// <summary>Cases run per target in this process, for the summary line of each test.</summary>
    public static readonly ConcurrentDictionary<string, int> Counts = new();

    /// <summary>
    /// Runs <paramref name="cases"/> samples of <paramref name="gen"/> through <paramref name="parse"/>; a sample fails
    /// when it throws an exception that <paramref name="typed"/> rejects, or hangs. CsCheck shrinks a failure and
    /// prints its seed (replay it with <c>CsCheck_Seed</c>).
    /// </summary>
    public static void Check<T>(ITestOutputHelper output, string target, Gen<T> gen, Action<T> parse,
        Func<Exception, string?> typed, int cases, Func<T, string>? print = null)
    {
        int n = Cases(cases);
        int accepted = 0;
        gen.Sample(input =>
        {
            if (Once(() => parse(input), typed)) accepted++;
        }, iter: n, threads: 1, print: print);
        int total = Counts.AddOrUpdate(target, n, (_, c) => c + n);
        output.WriteLine($"fuzz {target}: {n} cases passed, {accepted} accepted and {n - accepted} refused with a typed error ({total} cases for this target in this run)");
    }

    /// <summary>Runs one case with the hang bound; throws when it crashed or hung, else says whether the input was accepted.</summary>
    public static bool Once(Action parse, Func<Exception, string?> typed)
    {
        Exception? thrown = null;
        var run = Task.Factory.StartNew(() =>
        {
            try
            {
                parse();
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!run.Wait(CaseTimeout)) throw new FuzzFailure($"hang: the case ran for more than {CaseTimeout.TotalSeconds} s");
        if (thrown is null) return true;
        if (typed(thrown) is { } why) throw new FuzzFailure($"{why}: {thrown.GetType().Name}: {thrown.Message}", thrown);
        return false;
    }

    /// <summary>Accepts <typeparamref name="TError"/> whose message is not blank and passes <paramref name="names"/>.</summary>
    public static Func<Exception, string?> Only<TError>(Func<TError, string?>? names = null) where TError : Exception =>
        e => e.GetType() != typeof(TError) ? $"untyped error (expected {typeof(TError).Name})"
            : string.IsNullOrWhiteSpace(e.Message) ? "typed error with an empty message"
            : names?.Invoke((TError)e);
}

/// <summary>A fuzz case that crashed, hung or gave a useless message.</summary>
internal sealed class FuzzFailure(string message, Exception? inner = null) : Exception(message, inner);
