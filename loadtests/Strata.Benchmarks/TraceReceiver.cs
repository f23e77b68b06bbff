using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Strata.Benchmarks;

/// <summary>An OTLP/HTTP trace receiver in the benchmark's process (what a collector would take): silos started with
/// <c>--otlp-endpoint</c> <see cref="Url"/> and OTLP over HTTP post their exports here, and each body is handed to the
/// callback.</summary>
internal sealed class TraceReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TraceReceiver(WebApplication app) => _app = app;

    /// <summary>The endpoint to give the silos.</summary>
    public string Url => _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

    /// <summary>Starts a receiver on a free loopback port that calls <paramref name="export"/> with each export's body.</summary>
    public static async Task<TraceReceiver> Start(Action<byte[]> export)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        app.MapPost("/v1/traces", async (Microsoft.AspNetCore.Http.HttpContext http) =>
        {
            using var buffer = new MemoryStream();
            await http.Request.Body.CopyToAsync(buffer);
            export(buffer.ToArray());
            http.Response.ContentType = "application/x-protobuf";
        });
        await app.StartAsync();
        return new TraceReceiver(app);
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}
