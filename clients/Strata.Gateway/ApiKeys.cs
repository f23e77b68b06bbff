using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Strata.Gateway;

/// <summary>The key a request was authenticated with, as a request feature.</summary>
/// <param name="Key">The key's settings.</param>
/// <param name="Quota">The key's token budget.</param>
public sealed record GatewayCaller(ApiKeyOptions Key, TokenQuota Quota);

/// <summary>Finds the key of a request (<c>Authorization: Bearer KEY</c>, or <c>api-key: KEY</c> as Azure-style
/// clients send it) by comparing hashes in constant time.</summary>
public sealed class ApiKeyStore
{
    private readonly (byte[] Hash, GatewayCaller Caller)[] _keys;

    /// <summary>Indexes the configured keys.</summary>
    public ApiKeyStore(GatewayOptions options, TimeProvider clock) =>
        _keys = options.Keys.Select(k => (Convert.FromHexString(k.Sha256), new GatewayCaller(k, new TokenQuota(k.TokensPerMinute, clock)))).ToArray();

    /// <summary>The caller whose key the request carries, or null (missing or unknown key).</summary>
    public GatewayCaller? Find(HttpRequest request)
    {
        string? key = null;
        string authorization = request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) key = authorization["Bearer ".Length..].Trim();
        else if (request.Headers.TryGetValue("api-key", out var apiKey)) key = apiKey.ToString().Trim();
        if (string.IsNullOrEmpty(key)) return null;
        byte[] hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key));
        GatewayCaller? found = null;
        foreach (var (stored, caller) in _keys)
            if (CryptographicOperations.FixedTimeEquals(stored, hash)) found = caller;
        return found;
    }
}

/// <summary>
/// A key's budget of prompt plus completion tokens per minute, in fixed one-minute windows. A request is admitted
/// while the window has tokens left; what it uses is charged as it streams, so one request can overrun the budget
/// by at most its own size, and the next requests wait for the next window.
/// </summary>
public sealed class TokenQuota(long tokensPerMinute, TimeProvider clock)
{
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(1);
    private readonly Lock _lock = new();
    private DateTimeOffset _windowStart = clock.GetUtcNow();
    private long _used;

    /// <summary>Whether a request may start now; if not, how long until the window resets (at most a minute).</summary>
    public bool TryAdmit(out TimeSpan retryAfter)
    {
        lock (_lock)
        {
            Roll();
            retryAfter = _windowStart + Window - clock.GetUtcNow();
            return _used < tokensPerMinute;
        }
    }

    /// <summary>Charges <paramref name="tokens"/> to the current window.</summary>
    public void Charge(int tokens)
    {
        lock (_lock)
        {
            Roll();
            _used += tokens;
        }
    }

    private void Roll()
    {
        var now = clock.GetUtcNow();
        if (now - _windowStart < Window) return;
        _windowStart = now;
        _used = 0;
    }
}
