using System.Diagnostics;
using System.Text;

namespace Strata.EndToEnd.Tests.Infrastructure;

/// <summary>
/// A process a test started: its stdout and stderr are captured line by line (for assertions and for failure
/// messages), a test can wait for a line to appear, and disposing kills the whole process tree if it still runs.
/// </summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly StringBuilder _combined = new();
    private readonly List<(Func<string, bool> Match, string What, TaskCompletionSource<string> Found)> _waiters = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private bool _stdoutClosed;

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>A short name used in logs ("silo-1", "redis", "strata cluster deploy").</summary>
    public string Name { get; }

    /// <summary>Whether the process has ended.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Everything written to stdout so far.</summary>
    public string StandardOutput { get { lock (_gate) return _stdout.ToString(); } }

    /// <summary>Everything written to stderr so far.</summary>
    public string StandardError { get { lock (_gate) return _stderr.ToString(); } }

    /// <summary>Starts <paramref name="fileName"/> with <paramref name="args"/>; output is captured from the start.</summary>
    /// <param name="name">Name in logs and messages.</param>
    /// <param name="fileName">The program.</param>
    /// <param name="args">Its arguments.</param>
    /// <param name="maxLifetime">A hard limit enforced outside this process (coreutils <c>timeout</c>, when installed):
    /// the child ends then even if the test host was killed and never disposed it.</param>
    /// <param name="workingDirectory">Working directory; default the temporary folder.</param>
    /// <param name="environment">Variables added to the child's environment.</param>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> args, TimeSpan maxLifetime, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        string? timeout = Tools.OnPath("timeout");
        var info = new ProcessStartInfo(timeout ?? fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        if (timeout is not null)
        {
            // SIGTERM at the limit, SIGKILL 10 s later; --foreground keeps the child in the test's process group.
            foreach (string a in new[] { "--foreground", "--kill-after=10s", $"{(int)Math.Ceiling(maxLifetime.TotalSeconds)}s", fileName })
                info.ArgumentList.Add(a);
        }
        foreach (string a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (variable, value) in environment ?? new Dictionary<string, string>()) info.Environment[variable] = value;

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(name, process);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data, isError: false);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, isError: true);
        if (!process.Start()) throw new InvalidOperationException($"{name}: could not start {fileName}");
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private void OnLine(string? line, bool isError)
    {
        List<TaskCompletionSource<string>> found = [];
        List<(Func<string, bool>, string What, TaskCompletionSource<string> Found)> orphaned = [];
        lock (_gate)
        {
            if (line is null)
            {
                if (!isError)
                {
                    _stdoutClosed = true;
                    orphaned.AddRange(_waiters);
                    _waiters.Clear();
                }
                return;
            }
            (isError ? _stderr : _stdout).AppendLine(line);
            _combined.Append($"[{Name} {_clock.Elapsed.TotalSeconds,6:F1}s {(isError ? "err" : "out")}] ").AppendLine(line);
            if (!isError)
            {
                for (int i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (!_waiters[i].Match(line)) continue;
                    found.Add(_waiters[i].Found);
                    _waiters.RemoveAt(i);
                }
            }
        }
        foreach (var tcs in found) tcs.TrySetResult(line!);
        foreach (var (_, what, tcs) in orphaned)
            tcs.TrySetException(new InvalidOperationException($"{Name} closed its output (exited?) without printing a line {what}"));
    }

    /// <summary>Waits for a stdout line starting with <paramref name="prefix"/> (also one already printed) and returns
    /// it; fails when the process ends first or <paramref name="timeout"/> passes.</summary>
    public Task<string> WaitForLineAsync(string prefix, TimeSpan timeout) =>
        WaitForLineAsync(l => l.StartsWith(prefix, StringComparison.Ordinal), $"starting with '{prefix}'", timeout);

    /// <summary>Waits for a stdout line containing <paramref name="text"/> anywhere.</summary>
    public Task<string> WaitForLineContainingAsync(string text, TimeSpan timeout) =>
        WaitForLineAsync(l => l.Contains(text, StringComparison.Ordinal), $"containing '{text}'", timeout);

    private async Task<string> WaitForLineAsync(Func<string, bool> match, string what, TimeSpan timeout)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (string line in _stdout.ToString().Split('\n'))
            {
                if (match(line.TrimEnd('\r'))) return line.TrimEnd('\r');
            }
            if (_stdoutClosed) throw new InvalidOperationException($"{Name} closed its output (exited?) without printing a line {what}");
            _waiters.Add((match, what, tcs));
        }
        try
        {
            return await tcs.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Name} printed no line {what} within {timeout.TotalSeconds:F0} s");
        }
    }

    /// <summary>Waits for the process to end (and its output to be read); kills it and throws
    /// <see cref="TimeoutException"/> when <paramref name="timeout"/> passes first.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"{Name} did not finish within {timeout.TotalSeconds:F0} s and was killed");
        }
    }

    /// <summary>Sends SIGTERM: the graceful stop Kubernetes and docker ask for.</summary>
    public void Terminate()
    {
        if (_process.HasExited) return;
        if (SendSignal(_process.Id, 15) != 0)
            throw new InvalidOperationException($"SIGTERM to {Name} (pid {_process.Id}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>Kills the process and everything it started (SIGKILL: a crash, not a shutdown), and waits for it.</summary>
    public void Kill()
    {
        try
        {
            if (_process.HasExited) return;
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
    }

    /// <summary>stdout and stderr interleaved, each line tagged with the process name and the time since start.</summary>
    public string Log()
    {
        lock (_gate) return _combined.Length == 0 ? $"[{Name}] (no output)\n" : _combined.ToString();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
