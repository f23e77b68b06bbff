using Strata.Contracts;

namespace Strata.Grains.Stages;

/// <summary>
/// The folder a silo loads packages from. Every package path a request names is confined to it: a relative path
/// is taken inside it, an absolute one must lie inside it, <c>..</c> is refused, and no symbolic link on the way may
/// lead out of it. Messages about its files name them relative to the store, never by the silo's own paths.
/// </summary>
public sealed class ModelStore
{
    private readonly string _root;

    /// <summary>The store at <paramref name="root"/> (relative to the working directory); links in it are resolved.</summary>
    public ModelStore(string root)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(root));
        _root = RealPath(full);
        Given = full;
    }

    /// <summary>The store's path as configured (made absolute).</summary>
    public string Given { get; }

    /// <summary>The full path of <paramref name="packagePath"/> inside the store.</summary>
    /// <exception cref="StrataException">invalid_request: the path leaves the store, or is empty.</exception>
    public string Resolve(string packagePath)
    {
        if (string.IsNullOrWhiteSpace(packagePath) || packagePath.Contains('\0'))
            throw Refused(packagePath, "is empty");
        if (packagePath.Split('/', '\\').Any(s => s == ".."))
            throw Refused(packagePath, "contains '..'");
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.IsPathRooted(packagePath) ? packagePath : Path.Combine(_root, packagePath)));
        // An absolute path is taken against the store as configured or as its links resolve.
        string? relative = Inside(full, _root) ?? Inside(full, Given);
        if (relative is null) throw Refused(packagePath, "is outside the model store (give a path relative to it)");
        // Every component must stay inside: a symbolic link may point within the store, never out of it.
        string at = _root;
        foreach (string part in relative.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            at = Path.Combine(at, part);
            var info = new FileInfo(at);
            if (info.LinkTarget is null) continue;
            string target = RealPath(at);
            if (Inside(target, _root) is null) throw Refused(packagePath, "goes through a symbolic link that leads out of the model store");
            at = target;
        }
        return at;
    }

    /// <summary><paramref name="message"/> with the store's own paths replaced by paths relative to it.</summary>
    public string Scrub(string message)
    {
        foreach (string root in new[] { _root, Given }.Distinct())
            message = message.Replace(root + Path.DirectorySeparatorChar, "", StringComparison.Ordinal).Replace(root, "<model store>", StringComparison.Ordinal);
        return message;
    }

    private static StrataException Refused(string packagePath, string why) =>
        new(ErrorCodes.InvalidRequest, $"package path '{packagePath}' {why}");

    private static string? Inside(string full, string root) =>
        full == root ? "" : full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? full[(root.Length + 1)..] : null;

    // The path with every symbolic link along it followed (realpath), for paths that exist; others as given.
    private static string RealPath(string path)
    {
        string resolved = Path.GetPathRoot(path)!;
        foreach (string part in path[resolved.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(resolved, part);
            for (int hops = 0; hops < 40 && new FileInfo(next).LinkTarget is { } link; hops++)
                next = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.IsPathRooted(link) ? link : Path.Combine(Path.GetDirectoryName(next)!, link)));
            resolved = next;
        }
        return resolved;
    }
}
