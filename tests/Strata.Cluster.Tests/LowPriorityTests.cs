using Strata.Grains.Stages;

namespace Strata.Cluster.Tests;

/// <summary>Stage loads run at nice 10 on a thread of their own; the thread that asked (and every thread it starts
/// later, such as a stage's batch thread) keeps its priority.</summary>
public sealed class LowPriorityTests
{
    private sealed class LinuxFactAttribute : FactAttribute
    {
        public LinuxFactAttribute()
        {
            if (!OperatingSystem.IsLinux()) Skip = "thread priorities are read from /proc (Linux only)";
        }
    }

    [LinuxFact]
    public void A_stage_load_runs_niced_and_the_caller_keeps_its_priority()
    {
        int before = Nice();
        int inside = LowPriority.Run(Nice);
        Assert.Equal(Math.Max(before, 10), inside);
        Assert.Equal(before, Nice());
        var failure = Assert.Throws<InvalidOperationException>(() => LowPriority.Run<int>(() => throw new InvalidOperationException("load failed")));
        Assert.Equal("load failed", failure.Message);
    }

    /// <summary>The calling thread's nice value (field 19 of /proc/thread-self/stat).</summary>
    private static int Nice()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return int.Parse(fields[16], System.Globalization.CultureInfo.InvariantCulture);
    }
}
