using System.Net;
using System.Net.Sockets;
using Strata.Hosting;

namespace Strata.Cluster.Tests;

public sealed class SiloHostOptionsTests
{
    [Theory]
    [InlineData(new[] { "--metrics-port", "abc" }, "--metrics-port needs a port number")]
    [InlineData(new[] { "--metrics-port", "9464", "--metrics-host", "0.0.0.0" }, "--metrics-host '0.0.0.0' is not usable")]
    [InlineData(new[] { "--metrics-prot", "9464" }, "unknown option --metrics-prot")]
    public void Bad_silo_flags_are_refused_with_the_flag_named(string[] args, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => StrataSiloHost.CreateBuilder(args));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_metrics_port_already_taken_is_a_clear_error()
    {
        var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            var e = Assert.Throws<ArgumentException>(() => StrataSiloHost.CreateBuilder(["--metrics-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]));
            Assert.Contains($"--metrics-port {port} on localhost cannot be used", e.Message);
        }
        finally
        {
            taken.Stop();
        }
    }
}
