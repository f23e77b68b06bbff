using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Strata.Grains;
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

    [Theory]
    [InlineData(null, "auto", "local", null)]
    [InlineData("127.0.0.1:6379", "auto", "redis", null)]
    [InlineData("127.0.0.1:6379", "Local", "local", null)]
    [InlineData("127.0.0.1:6379", "distributed", "distributed", null)]
    [InlineData(null, "redis", "redis", "Cluster:Directory redis needs Redis clustering")]
    [InlineData(null, "dht", "dht", "Cluster:Directory must be auto, local, redis or distributed, got 'dht'")]
    public void The_grain_directory_follows_the_clustering_unless_chosen(string? redis, string directory, string effective, string? error)
    {
        var settings = new ClusteringSettings { Redis = redis, Directory = directory };
        Assert.Equal(effective, settings.EffectiveDirectory);
        if (error is null) Assert.Empty(settings.Errors());
        else Assert.Contains(settings.Errors(), e => e.StartsWith(error, StringComparison.Ordinal));
    }

    /// <summary>The silo's appsettings.json says it lists every setting with its default: each settable option of
    /// the Strata and Cluster sections is there, with the value the code defaults to.</summary>
    [Fact]
    public void The_silos_appsettings_lists_every_setting_with_its_default()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Cluster.sln"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir!, "silos", "Strata.Silo", "appsettings.json")),
            new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
        Check(json.RootElement.GetProperty("Strata"), new StrataSiloOptions());
        Check(json.RootElement.GetProperty("Cluster"), new ClusteringSettings());

        static void Check(JsonElement section, object defaults)
        {
            foreach (var property in defaults.GetType().GetProperties().Where(p => p.SetMethod is { IsPublic: true }))
            {
                Assert.True(section.TryGetProperty(property.Name, out var listed), $"appsettings.json does not list {property.Name}");
                object? value = property.GetValue(defaults);
                string expected = value switch
                {
                    null => "",
                    bool b => b ? "True" : "False",
                    TimeSpan t => t.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
                    IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
                    _ => value.ToString() ?? "",
                };
                string actual = listed.ValueKind switch
                {
                    JsonValueKind.Null => "",
                    JsonValueKind.True => "True",
                    JsonValueKind.False => "False",
                    JsonValueKind.String => listed.GetString()!,
                    _ => listed.GetRawText(),
                };
                Assert.True(expected == actual, $"appsettings.json gives {property.Name} = '{actual}', the default is '{expected}'");
            }
        }
    }
}
