using System.Runtime.InteropServices;

namespace Strata.Grains.Stages;

/// <summary>
/// Runs work on a thread of its own at a lower CPU priority (nice +10 on Linux), so that building a stage (its
/// graph, written and optimised, and its ONNX Runtime session: seconds of one core) does not take the cores from the
/// stages that serve meanwhile: a replica loaded for a drain, a heal or a scale-up. Linux threads inherit their
/// creator's priority and an unprivileged process cannot raise it again, so nothing that outlives the work may be
/// started on that thread (the ONNX Runtime thread pool is created before, the batch thread after). Elsewhere, or
/// where the call is refused, the work runs at normal priority.
/// </summary>
internal static class LowPriority
{
    private const int PrioProcess = 0;
    private const int Nice = 10;

    public static T Run<T>(Func<T> work)
    {
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            Lower();
            try { result = work(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "strata-stage-load" };
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return result!;
    }

    private static void Lower()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = SetPriority(PrioProcess, GetTid(), Nice); // on Linux a thread id names one thread
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // an unusual libc: the load runs at normal priority
        }
    }

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetTid();

    [DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int priority);
}
