using System.Security.Cryptography;
using System.Text;

namespace Strata.Gateway;

/// <summary>The gateway's settings, section <c>Gateway</c> of its configuration (appsettings.json, a
/// <c>--config</c> file, <c>STRATA__Gateway__...</c> environment variables).</summary>
public sealed class GatewayOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Gateway";

    /// <summary>The API keys that may call, stored as hashes (<see cref="ApiKeyOptions.Sha256"/>).</summary>
    public List<ApiKeyOptions> Keys { get; set; } = [];

    /// <summary>Largest request body in bytes; larger requests get 413.</summary>
    public long MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest prompt (or all chat messages together) in characters.</summary>
    public int MaxPromptChars { get; set; } = 256 * 1024;

    /// <summary>Most chat messages in one request.</summary>
    public int MaxMessages { get; set; } = 256;

    /// <summary>Most stop strings in one request.</summary>
    public int MaxStopStrings { get; set; } = 4;

    /// <summary>Longest stop string in characters.</summary>
    public int MaxStopLength { get; set; } = 64;

    /// <summary>Largest <c>max_tokens</c> a request may ask for.</summary>
    public int MaxTokens { get; set; } = 4096;

    /// <summary>Tokens generated when a request gives no <c>max_tokens</c>.</summary>
    public int DefaultMaxTokens { get; set; } = 256;

    /// <summary>Checks the settings; the messages name the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (MaxBodyBytes < 1024) errors.Add($"Gateway:MaxBodyBytes must be at least 1024, got {MaxBodyBytes}");
        if (MaxPromptChars < 1) errors.Add($"Gateway:MaxPromptChars must be at least 1, got {MaxPromptChars}");
        if (MaxMessages < 1) errors.Add($"Gateway:MaxMessages must be at least 1, got {MaxMessages}");
        if (MaxStopStrings < 0) errors.Add($"Gateway:MaxStopStrings must be at least 0, got {MaxStopStrings}");
        if (MaxStopLength < 1) errors.Add($"Gateway:MaxStopLength must be at least 1, got {MaxStopLength}");
        if (MaxTokens < 1) errors.Add($"Gateway:MaxTokens must be at least 1, got {MaxTokens}");
        if (DefaultMaxTokens < 1 || DefaultMaxTokens > MaxTokens)
            errors.Add($"Gateway:DefaultMaxTokens must be between 1 and Gateway:MaxTokens ({MaxTokens}), got {DefaultMaxTokens}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < Keys.Count; i++)
        {
            var k = Keys[i];
            string at = $"Gateway:Keys:{i}";
            if (string.IsNullOrWhiteSpace(k.Name)) errors.Add($"{at}:Name is required");
            else if (!names.Add(k.Name)) errors.Add($"{at}:Name '{k.Name}' is used by another key");
            if (k.Sha256 is not { Length: 64 } || !k.Sha256.All(Uri.IsHexDigit))
                errors.Add($"{at}:Sha256 must be the 64 hex digits of the key's SHA-256 (strata gateway key prints it)");
            if (k.RequestsPerSecond < 1) errors.Add($"{at}:RequestsPerSecond must be at least 1, got {k.RequestsPerSecond}");
            if (k.ConcurrentStreams < 1) errors.Add($"{at}:ConcurrentStreams must be at least 1, got {k.ConcurrentStreams}");
            if (k.TokensPerMinute < 1) errors.Add($"{at}:TokensPerMinute must be at least 1, got {k.TokensPerMinute}");
        }
        return errors;
    }
}

/// <summary>One API key: its name (the owner of the sessions it creates), the SHA-256 of the secret, whether it
/// may control the cluster, and its limits.</summary>
public sealed class ApiKeyOptions
{
    /// <summary>Who the key belongs to; sessions it creates belong to this name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Hex SHA-256 of the key's UTF-8 text. The key itself is never stored.</summary>
    public string Sha256 { get; set; } = "";

    /// <summary>Whether the key may use the cluster control routes (deploy, scale, drain).</summary>
    public bool Admin { get; set; }

    /// <summary>Requests per second (a token bucket of this size refilled every second).</summary>
    public int RequestsPerSecond { get; set; } = 10;

    /// <summary>Requests in flight at once (streams included).</summary>
    public int ConcurrentStreams { get; set; } = 8;

    /// <summary>Prompt plus completion tokens per minute.</summary>
    public long TokensPerMinute { get; set; } = 1_000_000;

    /// <summary>The hex SHA-256 of <paramref name="key"/>, as <see cref="Sha256"/> stores it.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>A new random key (<c>sk-strata-</c> and 32 random bytes in hex).</summary>
    public static string NewKey() => "sk-strata-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
}
