using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Strata.Cli;
using Strata.Client;
using Strata.Contracts;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Gateway.Tests;

/// <summary>
/// A real gateway on a loopback port over a real two-silo cluster in the test process, with the real stories260K
/// model deployed as <see cref="Model"/> (2 stages) and a tiny synthetic model without a chat template as
/// <see cref="NoTemplateModel"/>; two broken ones, <see cref="BadEncodeModel"/> (stories260K whose tokenizer cannot
/// encode a long run of 'a' followed by another character) and <see cref="LockedModel"/> (tiny, whose tokenizer.json
/// is of mode 000) and <see cref="LockedChatModel"/> (stories260K, whose chat_template.jinja is of mode 000). Keys: alice and bob (generous), slow (1 request per second), thrifty (20 tokens a
/// minute), one stream at a time for single, and root, the one admin key.
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string Model = "stories260K";
    public const string NoTemplateModel = "tiny";
    public const string BadEncodeModel = "badtok";
    public const string LockedModel = "locked";
    public const string LockedChatModel = "locked-chat";

    /// <summary>A prompt that <see cref="BadEncodeModel"/>'s tokenizer fails on (its normalizer's pattern
    /// <c>(a+)+$</c> backtracks catastrophically, up to the tokenizer's match time limit).</summary>
    public static readonly string BadPrompt = new string('a', 64) + "!";
    public static readonly TimeSpan Deadline = TimeSpan.FromMinutes(3);

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-gw-test-" + Guid.NewGuid().ToString("N")[..10]);
    private EmbeddedCluster? _cluster;
    private WebApplication? _app;

    public StrataClient Client { get; private set; } = null!;
    public Uri Url { get; private set; } = null!;
    public string StoriesPackage => Path.Combine(_dir, "store", Model);
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromMinutes(2) };

    /// <summary>The folder of the test's files, which no error message may name.</summary>
    public string Root => _dir;

    public static readonly IReadOnlyDictionary<string, string> Keys = new Dictionary<string, string>
    {
        ["alice"] = "sk-test-alice", ["bob"] = "sk-test-bob", ["slow"] = "sk-test-slow", ["thrifty"] = "sk-test-thrifty", ["single"] = "sk-test-single",
        ["root"] = "sk-test-root",
    };

    public async Task InitializeAsync()
    {
        string store = Path.Combine(_dir, "store");
        ModelImporter.Import(Stories260K(), StoriesPackage, new ImportOptions { Name = Model });
        string tinySource = Path.Combine(_dir, "tiny-src");
        SyntheticCheckpoint.Write(SyntheticOptions.Preset("tiny") with { Seed = 5 }, tinySource);
        ModelImporter.Import(tinySource, Path.Combine(store, NoTemplateModel), new ImportOptions { Name = NoTemplateModel });
        ModelImporter.Import(BadEncodeSource(), Path.Combine(store, BadEncodeModel), new ImportOptions { Name = BadEncodeModel });
        ModelImporter.Import(tinySource, Path.Combine(store, LockedModel), new ImportOptions { Name = LockedModel });
        ModelImporter.Import(Stories260K(), Path.Combine(store, LockedChatModel), new ImportOptions { Name = LockedChatModel });
        _cluster = await EmbeddedCluster.StartAsync(new EmbeddedClusterOptions
        {
            Silos = 2, ModelStore = store, Memory = "512MB", ClusterId = "gw-test-" + Guid.NewGuid().ToString("N")[..8],
        }).WaitAsync(Deadline);
        Client = await StrataClient.ConnectAsync(null, [.. _cluster.GatewayPorts], _cluster.ClusterId);
        await Client.DeployAsync(Model, new DeployRequest(StoriesPackage, 2, 512, MaxSessions: 8)).WaitAsync(Deadline);
        await Client.DeployAsync(NoTemplateModel, new DeployRequest(Path.Combine(store, NoTemplateModel), 1, 128, MaxSessions: 2)).WaitAsync(Deadline);
        await Client.DeployAsync(BadEncodeModel, new DeployRequest(Path.Combine(store, BadEncodeModel), 1, 128, MaxSessions: 2)).WaitAsync(Deadline);
        await Client.DeployAsync(LockedModel, new DeployRequest(Path.Combine(store, LockedModel), 1, 128, MaxSessions: 2)).WaitAsync(Deadline);
        await Client.DeployAsync(LockedChatModel, new DeployRequest(Path.Combine(store, LockedChatModel), 1, 128, MaxSessions: 2)).WaitAsync(Deadline);
        // Where chmod does not stop reads (root), the tests that use them are skipped and the models stay readable.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(store, LockedModel, "tokenizer.json"), UnixFileMode.None);
            File.SetUnixFileMode(Path.Combine(store, LockedChatModel, "chat_template.jinja"), UnixFileMode.None);
        }

        var settings = new Dictionary<string, string?> { ["Gateway:MaxBodyBytes"] = "65536", ["Gateway:MaxTokens"] = "400" };
        int i = 0;
        foreach (var (name, key) in Keys)
        {
            settings[$"Gateway:Keys:{i}:Name"] = name;
            settings[$"Gateway:Keys:{i}:Sha256"] = ApiKeyOptions.Hash(key);
            settings[$"Gateway:Keys:{i}:RequestsPerSecond"] = name == "slow" ? "1" : "1000";
            settings[$"Gateway:Keys:{i}:TokensPerMinute"] = name == "thrifty" ? "20" : "10000000";
            settings[$"Gateway:Keys:{i}:ConcurrentStreams"] = name == "single" ? "1" : "16";
            settings[$"Gateway:Keys:{i}:Admin"] = name == "root" ? "true" : "false";
            i++;
        }
        var builder = GatewayApp.CreateBuilder([]);
        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = GatewayApp.Build(builder, Client);
        await _app.StartAsync();
        Url = new Uri(_app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        if (Client is not null) await Client.DisposeAsync();
        if (_cluster is not null) await _cluster.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>A request with the key of <paramref name="who"/> (null: no key).</summary>
    public HttpRequestMessage Request(HttpMethod method, string path, string? who, string? json = null)
    {
        var request = new HttpRequestMessage(method, new Uri(Url, path));
        if (who is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Keys.GetValueOrDefault(who, who));
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        return request;
    }

    /// <summary>Sends a request and reads the whole reply.</summary>
    public async Task<Reply> Send(HttpRequestMessage request)
    {
        using var response = await Http.SendAsync(request).WaitAsync(Deadline);
        string body = await response.Content.ReadAsStringAsync();
        return new Reply((int)response.StatusCode, body, response.Headers.RetryAfter?.Delta, response.Content.Headers.ContentType?.MediaType);
    }

    public Task<Reply> Post(string path, string? who, object body, string? session = null)
    {
        var request = Request(HttpMethod.Post, path, who, JsonSerializer.Serialize(body));
        if (session is not null) request.Headers.Add("X-Strata-Session", session);
        return Send(request);
    }

    // stories260K with one more normalizer step, a Replace whose pattern backtracks catastrophically on BadPrompt.
    private string BadEncodeSource()
    {
        string source = Path.Combine(_dir, "badtok-src");
        Directory.CreateDirectory(source);
        foreach (string file in Directory.GetFiles(Stories260K())) File.Copy(file, Path.Combine(source, Path.GetFileName(file)));
        string tokenizer = Path.Combine(source, "tokenizer.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(tokenizer))!;
        json["normalizer"]!["normalizers"]!.AsArray().Add(new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "Replace", ["pattern"] = new System.Text.Json.Nodes.JsonObject { ["Regex"] = "(a+)+$" }, ["content"] = "a",
        });
        File.WriteAllText(tokenizer, json.ToJsonString());
        return source;
    }

    private static string Stories260K()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "stories260K");
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        throw new InvalidOperationException("models/stories260K is missing from this checkout: the gateway tests need it (it ships in the repository)");
    }
}

/// <summary>A whole HTTP reply.</summary>
public sealed record Reply(int Status, string Body, TimeSpan? RetryAfter, string? MediaType)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    /// <summary>The error object of an OpenAI error body (asserts the shape).</summary>
    public JsonElement Error
    {
        get
        {
            var error = Json.GetProperty("error");
            foreach (string name in (string[])["message", "type", "param", "code"]) Assert.True(error.TryGetProperty(name, out _), $"error has no {name}: {Body}");
            return error;
        }
    }
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
