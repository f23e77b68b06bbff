using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Strata.Contracts.Security;

/// <summary>
/// Proof that a call comes from an administrator or a silo, for clusters that use mutual TLS. Orleans lets grains
/// see neither the connection nor its certificate, and any caller can write the request context, so a role cannot
/// simply be claimed there: the caller signs the time with the private key of its cluster certificate and sends the
/// signature with the certificate (<see cref="Key"/> in the request context). A silo accepts the token when the
/// certificate chains to the cluster's CA with role <see cref="ClusterRole.Admin"/> or <see cref="ClusterRole.Silo"/>,
/// the signature holds, and the time is within two minutes. The token travels on through the grain calls it causes.
/// </summary>
public static class ControlToken
{
    /// <summary>The request-context key that holds the token.</summary>
    public const string Key = "strata-control";

    private static readonly TimeSpan Skew = TimeSpan.FromMinutes(2);
    private static readonly ConcurrentDictionary<string, DateTimeOffset> Verified = new(StringComparer.Ordinal);

    /// <summary>A token signed by <paramref name="tls"/>'s certificate for <paramref name="clusterId"/>.</summary>
    public static string Create(ClusterTls tls, string clusterId, DateTimeOffset now)
    {
        using var key = tls.Certificate.GetECDsaPrivateKey() ?? throw new InvalidDataException("TLS: the certificate has no ECDSA private key");
        string time = now.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        byte[] signature = key.SignData(Payload(clusterId, time), HashAlgorithmName.SHA256);
        return $"{time}.{Convert.ToBase64String(tls.Certificate.RawData)}.{Convert.ToBase64String(signature)}";
    }

    /// <summary>Whether <paramref name="token"/> proves an administrator or a silo of this cluster.</summary>
    public static bool Verify(ClusterTls tls, string clusterId, string? token, DateTimeOffset now)
    {
        if (token is null || token.Length > 8192) return false;
        if (Verified.TryGetValue(token, out var until) && now < until) return true;
        string[] parts = token.Split('.');
        if (parts.Length != 3 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long seconds)) return false;
        var signed = DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(seconds, 0, 253402300799));
        if ((now - signed).Duration() > Skew) return false;
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(parts[1]));
            if (tls.RoleOf(certificate) is not (ClusterRole.Admin or ClusterRole.Silo)) return false;
            using var key = certificate.GetECDsaPublicKey();
            if (key is null || !key.VerifyData(Payload(clusterId, parts[0]), Convert.FromBase64String(parts[2]), HashAlgorithmName.SHA256)) return false;
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            return false;
        }
        if (Verified.Count > 1024) Verified.Clear();
        Verified[token] = signed + Skew;
        return true;
    }

    private static byte[] Payload(string clusterId, string time) => Encoding.UTF8.GetBytes($"strata-control|{clusterId}|{time}");
}
