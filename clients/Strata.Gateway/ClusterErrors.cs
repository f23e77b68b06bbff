using System.Text.RegularExpressions;

namespace Strata.Gateway;

/// <summary>
/// Recognises failures that come back from the cluster by their type, also where that type did not cross the wire
/// whole, and removes the silo's file system from their messages before a client sees them. A grain's exception of
/// a type without an Orleans codec reaches the client as a <see cref="Orleans.Serialization.CodecNotFoundException"/>
/// that names the type and loses the message; one whose type the client cannot load, as an
/// <see cref="Orleans.Serialization.UnavailableExceptionFallbackException"/> that names it.
/// </summary>
internal static partial class ClusterErrors
{
    /// <summary>The tokenizer or a model file failed (Strata.Models, which the gateway does not reference): at a
    /// session, a prompt its tokenizer could not encode.</summary>
    public const string ModelFormat = "Strata.Models.ModelFormatException";

    /// <summary>Whether <paramref name="e"/> is, or stands for, an exception of type <paramref name="fullName"/>.</summary>
    public static bool Is(Exception e, string fullName) => e switch
    {
        _ when e.GetType().FullName == fullName => true,
        Orleans.Serialization.UnavailableExceptionFallbackException { ExceptionType: { } type } =>
            type == fullName || type.StartsWith(fullName + ",", StringComparison.Ordinal),
        Orleans.Serialization.CodecNotFoundException => e.Message.Contains($"type {fullName}.", StringComparison.Ordinal) ||
            e.Message.EndsWith($"type {fullName}", StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>Whether the message of <paramref name="e"/> is lost: only its type crossed the wire.</summary>
    public static bool LostMessage(Exception e) => e is Orleans.Serialization.CodecNotFoundException;

    /// <summary>Whether <paramref name="e"/> says that a file on a silo could not be read: permissions
    /// (<see cref="UnauthorizedAccessException"/>), or a file or folder that is not there.</summary>
    public static bool IsUnreadableFile(Exception e) =>
        e is UnauthorizedAccessException or FileNotFoundException or DirectoryNotFoundException ||
        Is(e, typeof(UnauthorizedAccessException).FullName!) || Is(e, typeof(FileNotFoundException).FullName!) ||
        Is(e, typeof(DirectoryNotFoundException).FullName!);

    /// <summary>
    /// <paramref name="message"/> with every absolute path (<c>/srv/models/x/tokenizer.json</c>,
    /// <c>C:\models\x</c>) cut to its last part (<c>&lt;path&gt;/tokenizer.json</c>). The silos already name files
    /// relative to their model store; this is the last line for a message that does not. The gateway's own routes
    /// (<c>/v1/...</c>, <c>/admin/v1/...</c>) are kept.
    /// </summary>
    public static string Scrub(string message) => AbsolutePath().Replace(message, m =>
    {
        string path = m.Value;
        if (path.StartsWith("/v1/", StringComparison.Ordinal) || path.StartsWith("/admin/", StringComparison.Ordinal)) return path;
        string last = path.TrimEnd('/', '\\');
        last = last[(last.LastIndexOfAny(['/', '\\']) + 1)..];
        return "<path>/" + last;
    });

    // An absolute path of two or more parts, starting a word: "/a/b", "C:\a\b".
    [GeneratedRegex(@"(?<![\w.~/\\-])(?:(?:/[^\s/\\'""`<>|]+){2,}/?|[A-Za-z]:\\[^\s'""`<>|]+)")]
    private static partial Regex AbsolutePath();
}
