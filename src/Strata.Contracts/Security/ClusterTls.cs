using Orleans.Connections.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Strata.Contracts.Security;

/// <summary>The roles a cluster certificate gives, by its subject: silos, cluster clients (the gateway,
/// applications) and administrators (the command line).</summary>
public enum ClusterRole
{
    /// <summary>A silo: <c>CN=strata-silo</c>, server and client authentication.</summary>
    Silo,
    /// <summary>A cluster client: <c>CN=strata-client</c>.</summary>
    Client,
    /// <summary>An administrator's client: <c>CN=strata-admin</c>.</summary>
    Admin,
}

/// <summary>
/// Mutual TLS inside the cluster from one folder made by <c>strata certs create DIR</c>: <c>ca.crt</c> (the
/// cluster's certificate authority) and one <c>ROLE.pfx</c> per role. A peer is accepted only with a certificate
/// issued by that CA, for a role allowed on that side: silos accept silos and clients; clients accept silos only.
/// </summary>
public sealed class ClusterTls
{
    /// <summary>The name silos present and clients check (their certificates' DNS name).</summary>
    public const string SiloHostName = "strata-silo";

    private readonly X509Certificate2 _ca;

    private ClusterTls(X509Certificate2 ca, X509Certificate2 certificate, ClusterRole role)
    {
        _ca = ca;
        Certificate = certificate;
        Role = role;
    }

    /// <summary>This process's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The role this process has.</summary>
    public ClusterRole Role { get; }

    /// <summary>The file name of a role's certificate in a certificate folder.</summary>
    public static string FileOf(ClusterRole role) => role.ToString().ToLowerInvariant() + ".pfx";

    /// <summary>Loads <c>ca.crt</c> and <c>ROLE.pfx</c> from <paramref name="dir"/>.</summary>
    /// <exception cref="InvalidDataException">A file is missing or is not what it should be; the message names it.</exception>
    public static ClusterTls Load(string dir, ClusterRole role)
    {
        string caFile = Path.Combine(dir, "ca.crt"), certFile = Path.Combine(dir, FileOf(role));
        foreach (string file in new[] { caFile, certFile })
            if (!File.Exists(file)) throw new InvalidDataException($"TLS: {file} not found (strata certs create {dir} makes the cluster's certificates)");
        X509Certificate2 ca, cert;
        try
        {
            ca = X509Certificate2.CreateFromPem(File.ReadAllText(caFile));
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"TLS: {caFile} is not a PEM certificate ({e.Message})");
        }
        try
        {
            cert = X509CertificateLoader.LoadPkcs12FromFile(certFile, password: null);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"TLS: {certFile} is not a PKCS#12 certificate without password ({e.Message})");
        }
        if (!cert.HasPrivateKey) throw new InvalidDataException($"TLS: {certFile} holds no private key");
        var tls = new ClusterTls(ca, cert, role);
        if (tls.RoleOf(cert) != role) throw new InvalidDataException($"TLS: {certFile} is not a {role} certificate issued by {caFile}");
        return tls;
    }

    /// <summary>Whether a peer's certificate may connect to this process.</summary>
    public bool Accepts(X509Certificate2? peer)
    {
        var role = RoleOf(peer);
        return Role == ClusterRole.Silo ? role is not null : role == ClusterRole.Silo;
    }

    /// <summary>The role <paramref name="certificate"/> gives when it chains to this cluster's CA and is valid now;
    /// null otherwise.</summary>
    public ClusterRole? RoleOf(X509Certificate2? certificate)
    {
        if (certificate is null) return null;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (!chain.Build(certificate)) return null;
        return certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false) switch
        {
            "strata-silo" => ClusterRole.Silo,
            "strata-client" => ClusterRole.Client,
            "strata-admin" => ClusterRole.Admin,
            _ => null,
        };
    }

    /// <summary>Sets Orleans' TLS options for this process: a certificate required on both sides of every
    /// connection, validated against the cluster's CA and role (<see cref="Accepts"/>), silos named
    /// <see cref="SiloHostName"/>.</summary>
    public void Apply(TlsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.LocalCertificate = Certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (peer, _, _) => Accepts(peer);
        options.OnAuthenticateAsClient = (_, auth) => auth.TargetHost = SiloHostName;
    }
}
