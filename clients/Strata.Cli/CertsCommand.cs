using System.CommandLine;
using Strata.Hosting;

namespace Strata.Cli;

/// <summary><c>strata certs create DIR</c>: a development certificate set for mutual TLS in the cluster.</summary>
internal static class CertsCommand
{
    public static Command Create(CliOutput output)
    {
        var dir = new Argument<string>("DIR") { Description = "Folder to write ca.crt, ca.key, silo.pfx, client.pfx and admin.pfx into" };
        var days = new Option<int>("--days") { Description = "Days the certificates are valid", DefaultValueFactory = _ => 365 };
        var create = new Command("create", "Make a development CA and certificates for silos, clients and administrators.") { dir, days };
        create.SetAction(parse =>
        {
            int valid = parse.GetValue(days);
            if (valid is < 1 or > 3650) throw new CliUsageException($"--days must be between 1 and 3650, got {valid}");
            string folder = parse.GetValue(dir)!;
            foreach (string file in CertificateAuthority.Create(folder, TimeSpan.FromDays(valid))) output.Out.WriteLine($"wrote {file}");
            output.Out.WriteLine($"silos: strata-silo --tls {folder} ...; clients: --tls {folder} (admin.pfx for cluster control, client.pfx for the gateway)");
            output.Out.WriteLine("keep ca.key offline: it can issue certificates the cluster trusts");
            return 0;
        });
        return new Command("certs", "Certificates for mutual TLS inside the cluster.") { create };
    }
}
