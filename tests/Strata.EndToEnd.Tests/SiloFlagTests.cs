using System.Diagnostics;
using Strata.EndToEnd.Tests.Infrastructure;

namespace Strata.EndToEnd.Tests;

/// <summary>The silo executable answers a setting of the wrong type with one line naming the setting and its flag,
/// and exit code 2: no stack trace.</summary>
public sealed class SiloFlagTests
{
    [Theory]
    [InlineData("--pipelining", "maybe", "Strata:Pipelining")]
    [InlineData("--threads", "abc", "Strata:Threads")]
    [InlineData("--probe-timeout", "soon", "Cluster:ProbeTimeout")]
    public async Task A_setting_of_the_wrong_type_is_one_line_naming_it(string flag, string value, string key)
    {
        var start = new ProcessStartInfo(Tools.Dotnet) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { Tools.SiloDll, flag, value }) start.ArgumentList.Add(arg);
        using var silo = Process.Start(start)!;
        var stderr = silo.StandardError.ReadToEndAsync();
        var stdout = silo.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        try
        {
            await silo.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!silo.HasExited) silo.Kill(entireProcessTree: true);
        }
        string error = await stderr;
        await stdout;
        Assert.Equal(2, silo.ExitCode);
        Assert.Contains($"'{value}' at '{key}'", error);
        Assert.Contains($"(set by {flag})", error);
        Assert.DoesNotContain("   at ", error);
    }
}
