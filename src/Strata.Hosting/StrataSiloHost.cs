using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Strata.Engine.Serving;
using Strata.Grains;

namespace Strata.Hosting;

/// <summary>
/// Builds a Strata silo host from configuration: appsettings.json, environment variables (STRATA__Strata__Device,
/// ...) and command-line flags. The silo executable is this plus <c>Run()</c>.
/// </summary>
public static class StrataSiloHost
{
    /// <summary>Command-line flags and the configuration keys they set.</summary>
    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["--redis"] = "Cluster:Redis",
        ["--silo-port"] = "Cluster:SiloPort",
        ["--gateway-port"] = "Cluster:GatewayPort",
        ["--primary-port"] = "Cluster:PrimarySiloPort",
        ["--advertise"] = "Cluster:AdvertisedAddress",
        ["--cluster-id"] = "Cluster:ClusterId",
        ["--name"] = "Cluster:SiloName",
        ["--device"] = "Strata:Device",
        ["--memory"] = "Strata:Memory",
        ["--model-store"] = "Strata:ModelStore",
        ["--threads"] = "Strata:Threads",
        ["--speed"] = "Strata:Speed",
        ["--calibrate"] = "Strata:Calibrate",
        ["--precision"] = "Strata:Precision",
        ["--probe-timeout"] = "Cluster:ProbeTimeout",
        ["--missed-probes"] = "Cluster:MissedProbes",
        ["--directory"] = "Cluster:Directory",
        ["--tls"] = "Cluster:Tls",
        ["--max-batch"] = "Strata:MaxBatch",
        ["--prefill-chunk"] = "Strata:PrefillChunk",
        ["--pipelining"] = "Strata:Pipelining",
        ["--hop-batching"] = "Strata:HopBatching",
        ["--admission-queue"] = "Strata:AdmissionQueue",
        ["--admission-wait"] = "Strata:AdmissionWait",
        ["--metrics-port"] = "Telemetry:MetricsPort",
        ["--metrics-host"] = "Telemetry:MetricsHost",
        ["--otlp-endpoint"] = "Telemetry:OtlpEndpoint",
        ["--trace-sample"] = "Telemetry:TraceSampleRatio",
    };

    /// <summary>Creates the silo host builder.</summary>
    public static HostApplicationBuilder CreateBuilder(string[] args)
    {
        var unknown = args.Where((a, i) => a.StartsWith("--", StringComparison.Ordinal) && !Flags.ContainsKey(a.Split('=')[0])).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"unknown option {unknown[0]}; options: {string.Join(", ", Flags.Keys)}");

        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddEnvironmentVariables("STRATA__");
        builder.Configuration.AddCommandLine(args, Flags.ToDictionary(kv => kv.Key, kv => kv.Value));
        builder.Logging.AddSimpleConsole(c => { c.SingleLine = true; c.TimestampFormat = "HH:mm:ss.fff "; });
        builder.Logging.AddFilter("Orleans", LogLevel.Warning).AddFilter("Microsoft", LogLevel.Warning).AddFilter("Polly", LogLevel.Warning);

        var cluster = new ClusteringSettings();
        builder.Configuration.GetSection("Cluster").Bind(cluster);
        string? siloName = builder.Configuration["Cluster:SiloName"];
        builder.UseOrleans(silo =>
        {
            silo.UseStrataClustering(cluster);
            silo.AddStrata(builder.Configuration);
            silo.Configure<SiloOptions>(o => o.SiloName = siloName ?? $"silo-{cluster.SiloPort}");
        });
        builder.Services.AddHostedService<ReadyAnnouncer>();
        AddMetrics(builder);
        AddTracing(builder);
        return builder;
    }

    /// <summary>With <c>Telemetry:OtlpEndpoint</c> (--otlp-endpoint) set, exports traces over OTLP (gRPC, or HTTP
    /// with <c>Telemetry:OtlpProtocol</c> = http) for a fraction <c>Telemetry:TraceSampleRatio</c> (--trace-sample,
    /// default 0.01) of the requests that arrive without a sampled parent; a sampled parent (a client that traces)
    /// is always followed. Off by default: then no span is even created.</summary>
    private static void AddTracing(HostApplicationBuilder builder)
    {
        string? endpoint = builder.Configuration["Telemetry:OtlpEndpoint"];
        if (string.IsNullOrEmpty(endpoint)) return;
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"--otlp-endpoint needs an http(s) URL such as http://localhost:4317, got '{endpoint}'");
        string ratioText = builder.Configuration["Telemetry:TraceSampleRatio"] ?? "0.01";
        if (!double.TryParse(ratioText, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double ratio) || ratio is < 0 or > 1)
            throw new ArgumentException($"--trace-sample needs a fraction from 0 to 1, got '{ratioText}'");
        var protocol = (builder.Configuration["Telemetry:OtlpProtocol"] ?? "grpc").ToLowerInvariant() switch
        {
            "grpc" => OpenTelemetry.Exporter.OtlpExportProtocol.Grpc,
            "http" or "http/protobuf" => OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf,
            var other => throw new ArgumentException($"Telemetry:OtlpProtocol must be grpc or http, got '{other}'"),
        };
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("strata-silo", serviceInstanceId: builder.Configuration["Cluster:SiloName"]))
            .WithTracing(t => StrataTracingSetup.Configure(t, ratio).AddOtlpExporter(o =>
            {
                o.Protocol = protocol;
                // HTTP/protobuf posts to the traces path; gRPC takes the endpoint as given.
                o.Endpoint = protocol == OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf && uri.AbsolutePath is "" or "/"
                    ? new Uri(uri, "/v1/traces") : uri;
            }));
    }

    /// <summary>With <c>Telemetry:MetricsPort</c> (--metrics-port) set, serves the Strata meters (batch size, step
    /// time, queue depth, KV use, admissions, token counts, latencies) in Prometheus text format at
    /// http://HOST:PORT/metrics through OpenTelemetry (HOST from <c>Telemetry:MetricsHost</c>, default localhost).</summary>
    private static void AddMetrics(HostApplicationBuilder builder)
    {
        string? text = builder.Configuration["Telemetry:MetricsPort"];
        if (string.IsNullOrEmpty(text) || text == "0") return;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) || port > 65535)
            throw new ArgumentException($"--metrics-port needs a port number (1-65535, or 0 for none), got '{text}'");
        string host = builder.Configuration["Telemetry:MetricsHost"] ?? "localhost";
        if (host is "*" or "+" or "0.0.0.0" or "::" || Uri.CheckHostName(host) == UriHostNameType.Unknown)
            throw new ArgumentException($"--metrics-host '{host}' is not usable: give this machine's host name or one of its IP addresses " +
                                        "(the metrics listener cannot bind every interface at once)");
        ProbeMetricsPort(host, port);
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("strata-silo", serviceInstanceId: builder.Configuration["Cluster:SiloName"]))
            .WithMetrics(m => m
            .AddMeter(StrataMetrics.MeterName)
            .AddPrometheusHttpListener(o =>
            {
                o.Port = port;
                o.Host = host;
            }));
    }

    /// <summary>Fails with one clear line when the metrics port is taken (the exporter itself would fail the host's
    /// start with a long trace).</summary>
    private static void ProbeMetricsPort(string host, int port)
    {
        var address = host == "localhost" ? System.Net.IPAddress.Loopback : System.Net.IPAddress.TryParse(host, out var ip) ? ip : null;
        if (address is null) return;
        var probe = new System.Net.Sockets.TcpListener(address, port);
        try
        {
            probe.Start();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new ArgumentException($"--metrics-port {port} on {host} cannot be used: {e.Message}");
        }
        finally
        {
            probe.Stop();
        }
    }

    /// <summary>Writes one line when the silo has joined the cluster: the signal scripts and tests wait for.</summary>
    private sealed class ReadyAnnouncer(IHostApplicationLifetime lifetime, IOptions<StrataSiloOptions> options,
        Orleans.Runtime.ILocalSiloDetails silo, SiloCalibrationResult calibration) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() =>
                Console.WriteLine($"strata-silo ready: {silo.Name} at {silo.SiloAddress} gateway {silo.GatewayAddress}, " +
                                  $"device {options.Value.Device}, memory {options.Value.Memory}, model store {Path.GetFullPath(options.Value.ModelStore)}, " +
                                  (calibration.Value is { } c ? $"calibration: {c} (speed {c.Speed.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)})"
                                      : options.Value.Speed > 0 ? $"speed {options.Value.Speed.ToString(System.Globalization.CultureInfo.InvariantCulture)} (given)" : "no calibration")));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
