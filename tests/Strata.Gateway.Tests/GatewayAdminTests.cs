using Strata.Testing;
namespace Strata.Gateway.Tests;

/// <summary>Cluster control over HTTP: admin keys only, bounded request fields, statuses in snake_case JSON.</summary>
[Collection(GatewayCollection.Name)]
public sealed class GatewayAdminTests(GatewayFixture fx)
{
    [Fact]
    public async Task A_user_key_cannot_reach_cluster_control()
    {
        foreach (var (method, path, body) in new[]
                 {
                     (HttpMethod.Get, "/admin/v1/cluster", (string?)null),
                     (HttpMethod.Post, "/admin/v1/models", """{"model": "x", "package": "tiny"}"""),
                     (HttpMethod.Post, $"/admin/v1/models/{GatewayFixture.Model}/scale", """{"replicas": 2}"""),
                     (HttpMethod.Post, "/admin/v1/silos/silo-0/drain", "{}"),
                 })
        {
            var reply = await fx.Send(fx.Request(method, path, "alice", body));
            Assert.Equal(403, reply.Status);
            Assert.Equal("permission_error", reply.Error.GetProperty("type").GetString());
            Assert.Contains("'alice' may not control the cluster", reply.Error.GetProperty("message").GetString());
            Assert.Equal(401, (await fx.Send(fx.Request(method, path, null, body))).Status);
        }
        // Nothing changed: still one replica per stage.
        var status = await fx.Client.GetModelStatusAsync(GatewayFixture.Model);
        Assert.All(status.Stages, s => Assert.Equal(0, s.Replica));
    }

    [Fact]
    public async Task An_admin_key_deploys_scales_and_reads_the_cluster()
    {
        var deployed = await fx.Post("/admin/v1/models", "root", new { model = "tiny-admin", package = GatewayFixture.NoTemplateModel, stages = 1, max_context = 64, max_sessions = 1 });
        Assert.Equal(200, deployed.Status);
        Assert.Equal("ready", deployed.Json.GetProperty("state").GetString());
        Assert.Equal(1, deployed.Json.GetProperty("stages").GetArrayLength());

        var scaled = await fx.Post("/admin/v1/models/tiny-admin/scale", "root", new { replicas = 2 });
        Assert.Equal(200, scaled.Status);
        Assert.Equal(2, scaled.Json.GetProperty("stages").GetArrayLength());
        Assert.Equal(2, scaled.Json.GetProperty("stages").EnumerateArray().Select(s => s.GetProperty("silo").GetString()).Distinct().Count());
        Assert.Equal(200, (await fx.Post("/admin/v1/models/tiny-admin/scale", "root", new { replicas = 1 })).Status);

        var cluster = await fx.Send(fx.Request(HttpMethod.Get, "/admin/v1/cluster", "root"));
        Assert.Equal(200, cluster.Status);
        Assert.Equal(2, cluster.Json.GetProperty("silos").GetArrayLength());
        var models = cluster.Json.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("model").GetString()!);
        Assert.Equal(1, models["tiny-admin"].GetProperty("stages").GetArrayLength());
        Assert.Equal(2, models[GatewayFixture.Model].GetProperty("stages").GetArrayLength());
        Assert.All(models[GatewayFixture.Model].GetProperty("stages").EnumerateArray(), s => Assert.Equal("ready", s.GetProperty("state").GetString()));

        // Served like any model, through the OpenAI routes.
        var completion = await fx.Post("/v1/completions", "alice", new { model = "tiny-admin", prompt = "abc", max_tokens = 3, temperature = 0 });
        Assert.Equal(200, completion.Status);
    }

    [Theory]
    [InlineData("/admin/v1/models", """{"package": "tiny"}""", "model")]
    [InlineData("/admin/v1/models", """{"model": "a/b", "package": "tiny"}""", "model")]
    [InlineData("/admin/v1/models", """{"model": "x"}""", "package")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "\ud800"}""", "package")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "tiny", "replicas": 0}""", "replicas")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "tiny", "max_context": 99999999999}""", "max_context")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "tiny", "stages": "many"}""", "stages")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "tiny", "kv_dtype": "int8"}""", "kv_dtype")]
    [InlineData("/admin/v1/models", """{"model": "x", "package": "tiny", "kv_dtype": 16}""", "kv_dtype")]
    [InlineData("/admin/v1/models/tiny/scale", """{}""", "replicas")]
    [InlineData("/admin/v1/models/tiny/scale", """{"replicas": 65}""", "replicas")]
    public async Task Bad_control_requests_name_the_field(string path, string body, string param)
    {
        var reply = await fx.Send(fx.Request(HttpMethod.Post, path, "root", body));
        Assert.Equal(400, reply.Status);
        Assert.Equal(param, reply.Error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Draining_an_unknown_silo_names_the_live_ones()
    {
        var reply = await fx.Send(fx.Request(HttpMethod.Post, "/admin/v1/silos/no-such-silo/drain", "root", "{}"));
        Assert.Equal(400, reply.Status);
        string message = reply.Error.GetProperty("message").GetString()!;
        Assert.Contains("no active silo is named or addressed 'no-such-silo'", message);
    }

    [Fact]
    public async Task A_package_outside_the_model_store_is_refused_without_revealing_paths()
    {
        var reply = await fx.Send(fx.Request(HttpMethod.Post, "/admin/v1/models", "root", """{"model": "escape", "package": "../../etc"}"""));
        Assert.Equal(400, reply.Status);
        Assert.Contains("contains '..'", reply.Error.GetProperty("message").GetString());
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), reply.Body);
    }

    [PermissionsFact]
    public async Task A_package_whose_manifest_the_silo_cannot_read_is_a_typed_error_without_its_path()
    {
        // Was the system's "Access to the path '/.../strata-model.json' is denied." from the deploy, for a client of
        // the cluster, and a 500 "internal error" at the gateway.
        string store = Path.GetDirectoryName(fx.StoriesPackage)!;
        string package = Path.Combine(store, "locked-manifest");
        Directory.CreateDirectory(package);
        foreach (string file in Directory.GetFiles(Path.Combine(store, GatewayFixture.NoTemplateModel)))
            File.Copy(file, Path.Combine(package, Path.GetFileName(file)));
        PermissionsFactAttribute.MakeUnreadable(Path.Combine(package, "strata-model.json"));
        var reply = await fx.Send(fx.Request(HttpMethod.Post, "/admin/v1/models", "root", """{"model": "locked-manifest", "package": "locked-manifest"}"""));
        Assert.True(reply.Status == 500, $"{reply.Status} {reply.Body}");
        Assert.Equal("model_files_unreadable", reply.Error.GetProperty("code").GetString());
        Assert.DoesNotContain(store, reply.Body, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetTempPath().TrimEnd('/'), reply.Body, StringComparison.Ordinal);
    }
}
