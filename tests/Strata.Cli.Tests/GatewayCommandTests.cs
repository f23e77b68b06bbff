using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Strata.Cli.Tests;

public sealed class GatewayCommandTests
{
    [Fact]
    public async Task Gateway_key_prints_a_new_key_and_the_settings_entry_with_its_hash()
    {
        var r = (await ClusterCli.RunAsync(["gateway", "key", "--name", "ops", "--admin"])).Ok();
        string[] lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string key = lines[0]["key: ".Length..].Trim();
        Assert.StartsWith("sk-strata-", key);
        var entry = JsonDocument.Parse(lines[^1]).RootElement;
        Assert.Equal("ops", entry.GetProperty("Name").GetString());
        Assert.True(entry.GetProperty("Admin").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key))), entry.GetProperty("Sha256").GetString());
        var again = (await ClusterCli.RunAsync(["gateway", "key"])).Ok();
        Assert.DoesNotContain(key, again.Out);
    }

    [Theory]
    [InlineData("--Gateway:MaxTokens=0", "Gateway:MaxTokens must be at least 1")]
    [InlineData("--Gateway:Keys:0:Name=a", "Gateway:Keys:0:Sha256 must be the 64 hex digits")]
    [InlineData("--Gateway:MaxBodyBytes=abc", "gateway settings")]
    [InlineData("--Frobnicate=1", "unknown argument '--Frobnicate=1'")]
    public async Task Bad_gateway_settings_are_one_line_errors_naming_the_setting(string setting, string says)
    {
        // Settings are checked before anything connects (port 1 has no cluster).
        var r = await ClusterCli.RunAsync(["gateway", "--gateway-port", "1", setting]);
        Assert.Equal(CliApp.UserError, r.ExitCode);
        Assert.Contains(says, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }

    [Fact]
    public async Task A_missing_config_file_is_named()
    {
        var r = await ClusterCli.RunAsync(["gateway", "--gateway-port", "1", "--config", "/no/such/gateway.json"]);
        Assert.Equal(CliApp.UserError, r.ExitCode);
        Assert.Contains("--config /no/such/gateway.json: no such file", r.Err);
    }

    [Theory]
    [InlineData("--admin-cert /tmp", "--admin-cert needs --tls")]
    [InlineData("--tls /tmp --admin-cert /no/such/certs", "--admin-cert /no/such/certs: no such folder")]
    [InlineData("--tls /tmp --admin-cert /tmp", "--admin-cert /tmp: TLS: ")]
    public async Task An_admin_certificate_goes_with_tls_and_must_exist(string flags, string says)
    {
        var r = await ClusterCli.RunAsync(["gateway", "--gateway-port", "1", .. flags.Split(' ')]);
        Assert.Equal(CliApp.UserError, r.ExitCode);
        Assert.Contains(says, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
    }
}
