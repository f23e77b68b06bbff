using System.Diagnostics;

namespace Strata.Benchmarks;

/// <summary>Starts a strata-silo process for a benchmark and waits for its ready line.</summary>
internal static class SiloProcess
{
    /// <summary>Runs <c>dotnet</c> with <paramref name="args"/> (the silo's dll first), echoing its stderr with
    /// <paramref name="name"/> in front; returns once it printed <c>strata-silo ready</c> (at most 90 s).</summary>
    public static async Task<Process> Start(IEnumerable<string> args, string name, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args) psi.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        var p = Process.Start(psi)!;
        var ready = new TaskCompletionSource();
        p.OutputDataReceived += (_, e) => { if (e.Data?.StartsWith("strata-silo ready", StringComparison.Ordinal) == true) ready.TrySetResult(); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[{name}] {e.Data}"); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (await Task.WhenAny(ready.Task, Task.Delay(TimeSpan.FromSeconds(90))) != ready.Task)
            throw new TimeoutException($"silo {name} did not report ready within 90 s");
        return p;
    }

    /// <summary>Kills every process of <paramref name="processes"/> with its children and waits for it (the silos a
    /// benchmark started).</summary>
    public static void StopAll(IEnumerable<Process> processes)
    {
        foreach (var p in processes)
        {
            try { p.Kill(entireProcessTree: true); p.WaitForExit(10_000); } catch (InvalidOperationException) { }
            p.Dispose();
        }
    }
}
