using System.ClientModel;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using Strata.EndToEnd.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Strata.EndToEnd.Tests;

/// <summary>
/// The gateway as its own process (<c>strata gateway --redis</c>) over a cluster of real silo processes serving the
/// real stories260K model, called by the official OpenAI .NET SDK, the official <c>openai</c> npm client from a Node
/// script, and plain HTTP.
/// </summary>
public sealed class GatewayProcessTests(ITestOutputHelper output)
{
    private const string Model = "stories260K";
    private const string Prompt = "Once upon a time";
    private static readonly TimeSpan CliTimeout = TimeSpan.FromSeconds(90);

    [NodeClientFact]
    public async Task The_official_dotnet_and_npm_clients_chat_through_a_gateway_process_exactly_like_strata_generate()
    {
        await using var cluster = await ProcessCluster.StartAsync(output, silos: 2, "tiny2", layers: 2);
        string package = Path.Combine(cluster.Store, Model);
        var import = await cluster.StrataAsync(CliTimeout, "import", Path.Combine(Tools.RepositoryRoot, "models", Model), "--out", package);
        ClusterProcessTests.Check(import.ExitCode == 0, $"import failed: {import}", cluster);
        var deploy = await cluster.StrataAsync(CliTimeout, "cluster", "deploy", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId,
            "--model", Model, "--stages", "2");
        ClusterProcessTests.Check(deploy.ExitCode == 0, $"deploy failed: {deploy}", cluster);

        const string key = "sk-e2e-gateway";
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
        using var gateway = ChildProcess.Start("strata gateway", Tools.Dotnet,
            [Tools.CliDll, "gateway", "--redis", cluster.Redis, "--cluster-id", cluster.ClusterId, "--urls", "http://127.0.0.1:0",
             "--Gateway:Keys:0:Name=e2e", $"--Gateway:Keys:0:Sha256={hash}"], TimeSpan.FromMinutes(5), cluster.Root);
        string line;
        try
        {
            line = await gateway.WaitForLineContainingAsync("listening on", TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\n{gateway.Log()}", e);
        }
        string url = line.Split("listening on ", 2)[1].Split(' ', 2)[0];

        // The reference: the same package, one process, greedy.
        var local = await cluster.StrataAsync(CliTimeout, "generate", "--model", package, "--prompt", Prompt, "--max-new-tokens", "24",
            "--temperature", "0", "--json");
        ClusterProcessTests.Check(local.ExitCode == 0, $"local generate failed: {local}", cluster);
        var expected = JsonNode.Parse(local.Out)!;
        string expectedText = (string)expected["text"]!;

        // The official .NET SDK: streaming chat equals strata generate, and a plain completion does too.
        var sdk = new ChatClient(Model, new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(url + "/v1") });
        var greedy = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 24 };
        var sdkText = new StringBuilder();
        await foreach (var update in sdk.CompleteChatStreamingAsync([new UserChatMessage(Prompt)], greedy))
            foreach (var part in update.ContentUpdate) sdkText.Append(part.Text);
        ClusterProcessTests.Check(sdkText.ToString() == expectedText,
            $"the .NET SDK's streamed chat differs from strata generate:\nsdk:      {sdkText}\ngenerate: {expectedText}\n{gateway.Log()}", cluster);
        var whole = (await sdk.CompleteChatAsync([new UserChatMessage(Prompt)], greedy)).Value;
        ClusterProcessTests.Check(whole.Content[0].Text == expectedText && whole.Usage.OutputTokenCount == expected["generated_ids"]!.AsArray().Count,
            $"the .NET SDK's chat completion differs: '{whole.Content[0].Text}', {whole.Usage.OutputTokenCount} tokens", cluster);

        using var node = ChildProcess.Start("node stream-chat", Tools.OnPath("node")!,
            [Path.Combine(Tools.RepositoryRoot, "tests", "node", "stream-chat.mjs"), Model, Prompt, "24"], TimeSpan.FromMinutes(2), cluster.Root,
            new Dictionary<string, string> { ["OPENAI_BASE_URL"] = url + "/v1", ["OPENAI_API_KEY"] = key });
        int code = await node.WaitForExitAsync(TimeSpan.FromMinutes(2));
        ClusterProcessTests.Check(code == 0, $"the node client failed:\n{node.Log()}\n{gateway.Log()}", cluster);
        var streamed = JsonNode.Parse(node.StandardOutput.Trim())!;
        ClusterProcessTests.Check((string?)streamed["text"] == expectedText,
            $"the streamed chat differs from strata generate:\nnode:     {node.StandardOutput}\ngenerate: {local.Out}", cluster);
        ClusterProcessTests.Check((int?)streamed["usage"]?["completion_tokens"] == expected["generated_ids"]!.AsArray().Count,
            $"usage does not count the generated tokens: {node.StandardOutput}", cluster);

        // A wrong key is refused in OpenAI's shape; the gateway keeps serving.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var wrong = new HttpRequestMessage(HttpMethod.Get, url + "/v1/models");
        wrong.Headers.Authorization = new("Bearer", "sk-wrong");
        using var refused = await http.SendAsync(wrong);
        ClusterProcessTests.Check((int)refused.StatusCode == 401, $"a wrong key got {(int)refused.StatusCode}", cluster);
        var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        ClusterProcessTests.Check(error.GetProperty("code").GetString() == "invalid_api_key", $"unexpected error: {error}", cluster);

        gateway.Terminate();
        int exit = await gateway.WaitForExitAsync(TimeSpan.FromSeconds(30));
        ClusterProcessTests.Check(exit == 0, $"the gateway did not stop cleanly on SIGTERM (exit {exit}):\n{gateway.Log()}", cluster);
    }
}

/// <summary>A fact skipped, with the reason in the results, when redis-server, node or the npm client is missing.</summary>
public sealed class NodeClientFactAttribute : FactAttribute
{
    public NodeClientFactAttribute()
    {
        if (Tools.OnPath("redis-server") is null)
            Skip = "redis-server is not installed: install it (./test.sh does when it can) to run the end-to-end gateway test";
        else if (Tools.OnPath("node") is null)
            Skip = "node is not installed: the openai npm client test needs Node.js 20 or later";
        else if (!Directory.Exists(Path.Combine(Tools.RepositoryRoot, "tests", "node", "node_modules", "openai")))
            Skip = "the openai npm package is not installed in tests/node: run npm ci there (./test.sh does)";
    }
}
