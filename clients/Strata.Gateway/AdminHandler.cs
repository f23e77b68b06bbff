using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Strata.Client;
using Strata.Contracts;

namespace Strata.Gateway;

/// <summary>
/// Cluster control over HTTP for keys with <see cref="ApiKeyOptions.Admin"/>: <c>GET /admin/v1/cluster</c> (silos
/// and every cataloged model's shards), <c>POST /admin/v1/models</c> (deploy), <c>POST
/// /admin/v1/models/{name}/scale</c> and <c>POST /admin/v1/silos/{silo}/drain</c>. Any other key gets 403. With TLS
/// in the cluster the gateway signs these calls with the admin certificate it was given (<c>--admin-cert</c>); a
/// gateway without one answers 403 for them too, since the silos would refuse.
/// </summary>
internal sealed class AdminHandler(StrataClient client, CompletionHandler completions)
{
    /// <summary>How statuses read in JSON: snake_case names and states, as <c>strata cluster status --json</c>.</summary>
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        Encoder = OpenAiResponses.Json.Encoder,
    };

    public Task Cluster(HttpContext http) => Run(http, async () =>
    {
        var silos = await client.GetSilosAsync();
        var names = await client.Orleans.GetGrain<IModelCatalogGrain>(IModelCatalogGrain.Key).List();
        var models = new List<ModelStatus>();
        foreach (string name in names) models.Add(await client.GetModelStatusAsync(name));
        return new { silos = silos.Select(s => new { address = s.Silo, name = s.Name, status = s.Status }), models };
    });

    public Task Deploy(HttpContext http) => Run(http, async () =>
    {
        using var body = await completions.ReadBody(http);
        var root = Object(body.RootElement);
        string model = Name(root, "model");
        string package = String(root, "package") ?? throw OpenAiException.Invalid("package", "'package' is required: the package's path in the silos' model store");
        var request = new DeployRequest(package,
            Stages: CountOrAuto(root, "stages", 1, 256, absent: null),
            MaxContext: Int(root, "max_context", 1, 1 << 20) ?? 1024,
            MaxSessions: Int(root, "max_sessions", 1, 1 << 16) ?? 8,
            AdmissionQueue: Int(root, "admission_queue", 0, 1 << 20),
            AdmissionWait: Int(root, "admission_wait_seconds", 0, 3600) is int s ? TimeSpan.FromSeconds(s) : null,
            Replicas: CountOrAuto(root, "replicas", 1, 64, absent: 1),
            KvDtype: String(root, "kv_dtype") is { } kv
                ? kv is "fp16" or "fp32" ? kv : throw OpenAiException.Invalid("kv_dtype", "'kv_dtype' must be \"fp16\" or \"fp32\"")
                : null);
        return await client.DeployAsync(model, request, timeout: TimeSpan.FromMinutes(10), cancellation: http.RequestAborted);
    });

    public Task Scale(HttpContext http, string name) => Run(http, async () =>
    {
        using var body = await completions.ReadBody(http);
        var root = Object(body.RootElement);
        if (!root.TryGetProperty("replicas", out _)) throw OpenAiException.Invalid("replicas", "'replicas' is required: a number of shards per stage (1 to 64) or \"auto\"");
        return await client.ScaleAsync(name, CountOrAuto(root, "replicas", 1, 64, absent: null));
    });

    public Task Drain(HttpContext http, string silo) => Run(http, () => client.DrainAsync(silo));

    private async Task Run<T>(HttpContext http, Func<Task<T>> action)
    {
        try
        {
            var caller = http.Features.GetRequiredFeature<GatewayCaller>();
            if (!caller.Key.Admin)
                throw new OpenAiException(403, "permission_error", $"API key '{caller.Key.Name}' may not control the cluster (it is not an admin key)", code: "forbidden");
            if (!client.CanControl)
                throw new OpenAiException(403, "permission_error",
                    "this gateway holds no admin certificate, and the cluster's silos refuse control without one (start it with --admin-cert)", code: "forbidden");
            var result = await action();
            await http.Response.WriteAsJsonAsync(result, Json, http.RequestAborted);
        }
        catch (Exception e) when (!http.Response.HasStarted)
        {
            await OpenAiResponses.WriteError(http, completions.Map(e), CancellationToken.None);
        }
    }

    private static JsonElement Object(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object ? root : throw new OpenAiException(400, "invalid_request_error", "the body must be a JSON object");

    private static string? String(JsonElement root, string name)
    {
        if (JsonFields.String(root, name) is not { } s) return null;
        if (s.Length is 0 or > 1024) throw OpenAiException.Invalid(name, $"'{name}' must be 1 to 1024 characters");
        return s;
    }

    private static string Name(JsonElement root, string name)
    {
        string s = String(root, name) ?? throw OpenAiException.Invalid(name, $"'{name}' is required");
        if (s.Length > 128 || !s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw OpenAiException.Invalid(name, $"'{name}' must be 1 to 128 letters, digits, '-', '_' or '.'");
        return s;
    }

    private static int? Int(JsonElement root, string name, int min, int max)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n) || n < min || n > max)
            throw OpenAiException.Invalid(name, $"'{name}' must be an integer from {min} to {max}");
        return (int)n;
    }

    private static int? CountOrAuto(JsonElement root, string name, int min, int max, int? absent)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return absent;
        if (v.ValueKind == JsonValueKind.String && v.GetString() == "auto") return null;
        return Int(root, name, min, max) ?? absent;
    }
}
