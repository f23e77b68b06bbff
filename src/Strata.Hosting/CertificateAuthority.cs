using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Strata.Contracts.Security;

namespace Strata.Hosting;

/// <summary>
/// Makes a development certificate set for a cluster (<c>strata certs create DIR</c>): a CA (<c>ca.crt</c>,
/// <c>ca.key</c>) and certificates for silos (<c>silo.pfx</c>, DNS name <c>strata-silo</c>, server and client
/// authentication), cluster clients (<c>client.pfx</c>) and administrators (<c>admin.pfx</c>). Keys are ECDSA P-256;
/// files holding private keys are readable by their owner only.
/// </summary>
public static class CertificateAuthority
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid ClientAuth = new("1.3.6.1.5.5.7.3.2");

    /// <summary>Writes the set into <paramref name="dir"/> (created if needed); refuses to overwrite an existing set.</summary>
    /// <returns>The files written.</returns>
    public static IReadOnlyList<string> Create(string dir, TimeSpan? validity = null)
    {
        Directory.CreateDirectory(dir);
        if (File.Exists(Path.Combine(dir, "ca.crt"))) throw new IOException($"{dir} already holds a certificate set (ca.crt): remove it or choose another folder");
        var now = DateTimeOffset.UtcNow;
        var until = now + (validity ?? TimeSpan.FromDays(365));
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Strata Development CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(now.AddMinutes(-5), until.AddDays(1));
        var written = new List<string>
        {
            Write(dir, "ca.crt", ca.ExportCertificatePem(), secret: false),
            Write(dir, "ca.key", caKey.ExportPkcs8PrivateKeyPem(), secret: true),
        };
        foreach (var (role, usages) in new[] { (ClusterRole.Silo, new[] { ServerAuth, ClientAuth }), (ClusterRole.Client, new[] { ClientAuth }), (ClusterRole.Admin, new[] { ClientAuth }) })
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            string name = "strata-" + role.ToString().ToLowerInvariant();
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
            var oids = new OidCollection();
            foreach (var oid in usages) oids.Add(oid);
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName(name);
            request.CertificateExtensions.Add(san.Build());
            byte[] serial = RandomNumberGenerator.GetBytes(16);
            serial[0] &= 0x7F;
            using var leaf = request.Create(ca, now.AddMinutes(-5), until, serial);
            using var withKey = leaf.CopyWithPrivateKey(key);
            written.Add(Write(dir, ClusterTls.FileOf(role), withKey.Export(X509ContentType.Pfx), secret: true));
        }
        return written;
    }

    private static string Write(string dir, string name, object content, bool secret)
    {
        string path = Path.Combine(dir, name);
        if (content is string text) File.WriteAllText(path, text);
        else File.WriteAllBytes(path, (byte[])content);
        if (secret && !OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }
}
