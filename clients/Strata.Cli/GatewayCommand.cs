using System.CommandLine;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Strata.Client;
using Strata.Hosting;
using Strata.Contracts;
using Strata.Gateway;

namespace Strata.Cli;

/// <summary>
/// <c>strata gateway</c>: serves the OpenAI API over a cluster (<c>--redis</c> or local gateways), or with
/// <c>--embedded MODEL</c> over a local 2-silo cluster started in this process with that model deployed and a
/// development key printed. Settings come from configuration (appsettings.json beside the program, <c>--config</c>,
/// <c>STRATA__Gateway__...</c> environment variables, <c>--Gateway:Setting=value</c> arguments).
/// <c>strata gateway key</c> makes a new API key and prints the configuration entry that admits it.
/// </summary>
internal static class GatewayCommand
{
    private const string DefaultUrl = "http://127.0.0.1:8080";

    public static Command Create(CliOutput output)
    {
        var urls = new Option<string>("--urls") { Description = $"Where to listen (default {DefaultUrl}; port 0 picks a free one)", DefaultValueFactory = _ => DefaultUrl };
        var config = new Option<string?>("--config") { Description = "A JSON settings file (section Gateway: Keys, limits)" };
        var embedded = new Option<string?>("--embedded") { Description = "Start a local 2-silo cluster in this process and deploy this model folder or package on it" };
        var adminCert = new Option<string?>("--admin-cert")
        {
            Description = "Folder with ca.crt and admin.pfx: with --tls, the gateway signs the cluster control routes (/admin/v1, admin keys only) with it",
        };
        var otlp = new Option<string?>("--otlp-endpoint")
        {
            Description = "Export traces over OTLP to this URL (off without it): each HTTP request is the root of a trace that the session and every stage continue",
        };
        var otlpProtocol = new Option<string>("--otlp-protocol") { Description = "grpc or http (HTTP/protobuf)", DefaultValueFactory = _ => "grpc" };
        var traceSample = new Option<double>("--trace-sample")
        {
            Description = "Fraction of requests traced that arrive without a sampled traceparent", DefaultValueFactory = _ => 0.01,
        };
        var cluster = new ClusterFlags();
        var cmd = new Command("gateway", "Serve the OpenAI API (/v1/completions, /v1/chat/completions, /v1/models) over the cluster.")
        {
            urls, config, embedded, adminCert, otlp, otlpProtocol, traceSample, KeyCommand(output),
        };
        cluster.AddTo(cmd);
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(async (parse, ct) =>
        {
            string[] extra = parse.UnmatchedTokens.ToArray();
            foreach (string token in extra)
                if (!token.StartsWith("--Gateway:", StringComparison.Ordinal) && !token.StartsWith("--Logging:", StringComparison.Ordinal))
                    throw new CliUsageException($"unknown argument '{token}' (settings are given as --Gateway:NAME=VALUE)");
            var builder = GatewayApp.CreateBuilder(extra, parse.GetValue(config));
            builder.WebHost.UseUrls(parse.GetValue(urls)!);
            // The HTTP request's span (ASP.NET Core's source, which also honours a caller's traceparent) is the root;
            // the client library's strata.generate span and the silos' spans hang under it.
            using var tracing = parse.GetValue(otlp) is string endpoint
                ? Tracing(() => StrataTracingSetup.StartClient("strata-gateway", endpoint, parse.GetValue(traceSample), parse.GetValue(otlpProtocol)!, "Microsoft.AspNetCore"))
                : null;
            string? model = parse.GetValue(embedded);
            string? adminDir = parse.GetValue(adminCert);
            if (model is null) return await ServeAsync(output, builder, cluster.Get(parse), adminDir, null, ct);
            if (adminDir is not null) throw new CliUsageException("--admin-cert goes with --tls; --embedded runs without TLS");
            if (cluster.AnyGiven(parse)) throw new CliUsageException("--embedded starts its own cluster: leave out --redis, --gateway-port, --cluster-id and --tls");
            return await ServeEmbeddedAsync(output, builder, model, ct);
        });
        return cmd;
    }

    private static Command KeyCommand(CliOutput output)
    {
        var name = new Option<string>("--name") { Description = "Who the key is for", DefaultValueFactory = _ => "default" };
        var admin = new Option<bool>("--admin") { Description = "The key may control the cluster" };
        var cmd = new Command("key", "Make a new API key; prints the key once and the settings entry (with its hash) that admits it.") { name, admin };
        cmd.SetAction(parse =>
        {
            string key = ApiKeyOptions.NewKey();
            output.Out.WriteLine($"key: {key}");
            output.Out.WriteLine("add to the Gateway:Keys list of the gateway's settings:");
            output.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
            {
                Name = parse.GetValue(name), Sha256 = ApiKeyOptions.Hash(key), Admin = parse.GetValue(admin),
                RequestsPerSecond = 10, ConcurrentStreams = 8, TokensPerMinute = 1_000_000,
            }));
            return 0;
        });
        return cmd;
    }

    private static Strata.Contracts.Security.ClusterTls LoadAdmin(string dir)
    {
        if (!Directory.Exists(dir)) throw new CliUsageException($"--admin-cert {dir}: no such folder");
        try
        {
            return Strata.Contracts.Security.ClusterTls.Load(dir, Strata.Contracts.Security.ClusterRole.Admin);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException)
        {
            throw new CliUsageException($"--admin-cert {dir}: {e.Message}");
        }
    }

    private static OpenTelemetry.Trace.TracerProvider Tracing(Func<OpenTelemetry.Trace.TracerProvider> start)
    {
        try
        {
            return start();
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
    }

    private static async Task<int> ServeEmbeddedAsync(CliOutput output, WebApplicationBuilder builder, string model, CancellationToken ct)
    {
        if (!Directory.Exists(model)) throw new DirectoryNotFoundException($"--embedded {model}: no such folder");
        string work = Path.Combine(Path.GetTempPath(), "strata-gateway-" + Guid.NewGuid().ToString("N")[..12]);
        string store = Path.Combine(work, "models");
        Directory.CreateDirectory(store);
        try
        {
            var package = DemoCommand.PreparePackage(output, store, model);
            await using var cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions { Silos = 2, ModelStore = DemoCommand.ServingStore(package, store), ClusterId = "strata-gateway" }, ct);
            await using var connection = await ClusterConnection.ConnectAsync(cluster.Target, ct);
            int layers = package.Config.NumLayers;
            await connection.Client.DeployAsync(package.Name, new DeployRequest(package.Directory, Math.Min(2, layers),
                Math.Min(2048, package.Config.MaxPositionEmbeddings), MaxSessions: 8), timeout: TimeSpan.FromMinutes(5), cancellation: ct);
            output.Err.WriteLine($"[gateway] deployed {package.Name} on a local cluster of 2 silos");
            string? devKey = null;
            if (GatewayApp.ReadOptions(builder.Configuration).Keys.Count == 0)
            {
                devKey = ApiKeyOptions.NewKey();
                builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Gateway:Keys:0:Name"] = "dev",
                    ["Gateway:Keys:0:Sha256"] = ApiKeyOptions.Hash(devKey),
                    ["Gateway:Keys:0:Admin"] = "true",
                });
            }
            return await ServeAsync(output, builder, null, null, (connection.Client, package.Name, devKey), ct);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { output.Err.WriteLine($"[gateway] could not remove {work}: {e.Message}"); }
        }
    }

    private static async Task<int> ServeAsync(CliOutput output, WebApplicationBuilder builder, ClusterTarget? target, string? adminDir,
        (StrataClient Client, string Model, string? DevKey)? embedded, CancellationToken ct)
    {
        GatewayApp.ReadOptions(builder.Configuration); // bad settings fail before connecting
        if (adminDir is not null && target?.Tls is null) throw new CliUsageException("--admin-cert needs --tls: without TLS the cluster checks no certificate");
        var control = adminDir is null ? null : LoadAdmin(adminDir);
        // The gateway is a cluster client, not an administrator: with TLS it presents client.pfx.
        ClusterConnection? connection = target is null ? null : await ClusterConnection.ConnectAsync(target, ct, Strata.Contracts.Security.ClusterRole.Client);
        try
        {
            var client = embedded?.Client ?? connection!.Client;
            if (control is not null) client.WithControlCertificate(control);
            await using var app = GatewayApp.Build(builder, client);
            try
            {
                await app.StartAsync(ct);
            }
            catch (IOException e)
            {
                throw new CliUsageException($"cannot listen on {string.Join(", ", builder.WebHost.GetSetting("urls") ?? DefaultUrl)}: {e.Message}");
            }
            // Where to reach it goes to stdout (what the command gives); progress went to stderr.
            string url = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
            output.Out.WriteLine($"[gateway] listening on {url} ({(target is null ? "embedded cluster" : target.ToString())}); Ctrl+C stops");
            if (embedded is { DevKey: { } key, Model: var model })
            {
                output.Out.WriteLine($"[gateway] development key (admin): {key}");
                output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[gateway] try: curl -N {url}/v1/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' -d '{{\"model\":\"{model}\",\"prompt\":\"Once upon a time\",\"max_tokens\":64,\"stream\":true}}'"));
            }
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                output.Err.WriteLine("[gateway] stopping");
            }
            await app.StopAsync(CancellationToken.None);
            return 0;
        }
        finally
        {
            if (connection is not null) await connection.DisposeAsync();
        }
    }
}
