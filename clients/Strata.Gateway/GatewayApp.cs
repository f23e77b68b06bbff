using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Strata.Client;

namespace Strata.Gateway;

/// <summary>A setting of the gateway is wrong; the message lists every problem by setting name.</summary>
public sealed class GatewayConfigException(string message) : Exception(message);

/// <summary>
/// Builds the gateway: an ASP.NET Core app over a connected <see cref="StrataClient"/>. Routes:
/// <c>GET /health</c> (no key), <c>GET /ready</c>, <c>GET /v1/models</c>, <c>POST /v1/completions</c>,
/// <c>POST /v1/chat/completions</c>, <c>GET|DELETE /v1/sessions/{id}</c>, and for admin keys the cluster control
/// routes under <c>/admin/v1</c> (<see cref="AdminHandler"/>). Every route but <c>/health</c> needs an
/// API key; each key is limited in requests per second and streams in flight (ASP.NET Core rate limiting) and in
/// tokens per minute (<see cref="TokenQuota"/>).
/// </summary>
public static class GatewayApp
{
    private const string PerKey = "per-key";

    /// <summary>A builder whose configuration reads, in order: <c>appsettings.json</c> beside the program, the
    /// optional <paramref name="configFile"/>, <c>STRATA__</c> environment variables, and <paramref name="args"/>
    /// (<c>--Gateway:MaxTokens=512</c>, <c>--urls http://127.0.0.1:8080</c>).</summary>
    public static WebApplicationBuilder CreateBuilder(string[] args, string? configFile = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true);
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new FileNotFoundException($"--config {configFile}: no such file");
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }
        builder.Configuration.AddEnvironmentVariables("STRATA__");
        builder.Configuration.AddCommandLine(args);
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Logging.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        return builder;
    }

    /// <summary>The gateway's settings from <paramref name="configuration"/>; throws <see cref="GatewayConfigException"/>
    /// naming every bad setting.</summary>
    public static GatewayOptions ReadOptions(IConfiguration configuration)
    {
        var options = new GatewayOptions();
        try
        {
            configuration.GetSection(GatewayOptions.Section).Bind(options);
        }
        catch (InvalidOperationException e)
        {
            throw new GatewayConfigException($"gateway settings: {e.Message}");
        }
        var errors = options.Validate();
        if (errors.Count > 0) throw new GatewayConfigException("gateway settings: " + string.Join("; ", errors));
        return options;
    }

    /// <summary>Builds the app on <paramref name="builder"/> with the cluster behind <paramref name="client"/>.</summary>
    public static WebApplication Build(WebApplicationBuilder builder, StrataClient client, TimeProvider? clock = null)
    {
        var options = ReadOptions(builder.Configuration);
        clock ??= TimeProvider.System;
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(client);
        builder.Services.AddSingleton(new ApiKeyStore(options, clock));
        builder.Services.AddSingleton<CompletionHandler>();
        builder.Services.AddSingleton<AdminHandler>();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Encoder = OpenAiResponses.Json.Encoder);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        builder.Services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(PerKey, http =>
            {
                var key = http.Features.GetRequiredFeature<GatewayCaller>().Key;
                return RateLimitPartition.Get(key.Name, _ => RateLimiter.CreateChained(
                    new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = key.RequestsPerSecond,
                        TokensPerPeriod = key.RequestsPerSecond,
                        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                        QueueLimit = 0,
                    }),
                    new ConcurrencyLimiter(new ConcurrencyLimiterOptions { PermitLimit = key.ConcurrentStreams, QueueLimit = 0 })));
            });
            o.OnRejected = async (context, ct) =>
            {
                var retry = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? after : TimeSpan.FromSeconds(1);
                await OpenAiResponses.WriteError(context.HttpContext, new OpenAiException(429, "rate_limit_error",
                    "too many requests for this API key (requests per second or streams in flight); retry after the Retry-After header",
                    code: "rate_limit_exceeded", retryAfter: retry), ct);
            };
        });

        var app = builder.Build();
        app.Use(Authenticate);
        app.UseRateLimiter();
        var handler = app.Services.GetRequiredService<CompletionHandler>();
        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/ready", handler.Ready);
        app.MapGet("/v1/models", handler.Models).RequireRateLimiting(PerKey);
        app.MapPost("/v1/completions", (HttpContext http) => handler.Complete(http, chat: false)).RequireRateLimiting(PerKey);
        app.MapPost("/v1/chat/completions", (HttpContext http) => handler.Complete(http, chat: true)).RequireRateLimiting(PerKey);
        app.MapGet("/v1/sessions/{id}", handler.GetSession).RequireRateLimiting(PerKey);
        app.MapDelete("/v1/sessions/{id}", handler.DeleteSession).RequireRateLimiting(PerKey);
        var admin = app.Services.GetRequiredService<AdminHandler>();
        app.MapGet("/admin/v1/cluster", admin.Cluster).RequireRateLimiting(PerKey);
        app.MapPost("/admin/v1/models", admin.Deploy).RequireRateLimiting(PerKey);
        app.MapPost("/admin/v1/models/{name}/scale", admin.Scale).RequireRateLimiting(PerKey);
        app.MapPost("/admin/v1/silos/{silo}/drain", admin.Drain).RequireRateLimiting(PerKey);
        app.MapFallback((HttpContext http) => OpenAiResponses.WriteError(http,
            new OpenAiException(404, "invalid_request_error", $"no route {http.Request.Method} {http.Request.Path}", code: "unknown_url"), http.RequestAborted));
        return app;
    }

    // Every route but /health needs a key; the caller is a request feature the handlers and the rate limiter read.
    private static async Task Authenticate(HttpContext http, RequestDelegate next)
    {
        if (http.Request.Path.Equals("/health", StringComparison.Ordinal))
        {
            await next(http);
            return;
        }
        var caller = http.RequestServices.GetRequiredService<ApiKeyStore>().Find(http.Request);
        if (caller is null)
        {
            bool given = http.Request.Headers.Authorization.Count > 0 || http.Request.Headers.ContainsKey("api-key");
            await OpenAiResponses.WriteError(http, new OpenAiException(401, "invalid_request_error",
                given ? "incorrect API key provided" : "no API key provided: send 'Authorization: Bearer KEY'",
                code: "invalid_api_key"), http.RequestAborted);
            return;
        }
        http.Features.Set(caller);
        await next(http);
    }
}
