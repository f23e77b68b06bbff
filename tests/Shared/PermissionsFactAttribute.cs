namespace Strata.Testing;

/// <summary>
/// A test that needs a file this process cannot read. It is skipped, with the reason, where <c>chmod 000</c> does
/// not stop this process's reads (it runs as root); the gateway's <c>A_file_error_from_a_silo_names_no_path</c> and
/// the fuzz tests' <c>AccessDeniedIsAFormatErrorWithoutThePath</c> cover the same code paths with an injected failure
/// everywhere. Shared by the test projects that need it (linked from tests/Shared).
/// </summary>
public sealed class PermissionsFactAttribute : FactAttribute
{
    public PermissionsFactAttribute()
    {
        if (!CanMakeUnreadable())
            Skip = "chmod 000 does not stop this process's reads (it runs as root or with CAP_DAC_OVERRIDE), so no file can be made unreadable here";
    }

    /// <summary>Makes <paramref name="file"/> unreadable to this process (<c>chmod 000</c>).</summary>
    public static void MakeUnreadable(string file)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the permission tests use Unix file modes");
        File.SetUnixFileMode(file, UnixFileMode.None);
    }

    private static bool CanMakeUnreadable()
    {
        if (OperatingSystem.IsWindows()) return false;
        string probe = Path.Combine(Path.GetTempPath(), "strata-perm-probe-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllText(probe, "x");
            File.SetUnixFileMode(probe, UnixFileMode.None);
            using (File.OpenRead(probe)) { }
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
        finally
        {
            File.Delete(probe);
        }
    }
}
