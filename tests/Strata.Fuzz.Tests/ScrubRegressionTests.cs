using Strata.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Strata.Contracts;
using Strata.Grains;
using Strata.Grains.Stages;
using Strata.Models.Packaging;

namespace Strata.Fuzz.Tests;

/// <summary>
/// Errors about a package's tokenizer files reach clients through the session; like load and deploy errors they
/// must name files relative to the model store, never by the silo's own paths.
/// </summary>
public sealed class ScrubRegressionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _store;
    private readonly StageHost _host;

    public ScrubRegressionTests()
    {
        _store = Path.Combine(_dir.Path, "store");
        ModelImporter.Import(Seeds.ModelDir, Path.Combine(_store, "pkg"));
        _host = new StageHost(Options.Create(new StrataSiloOptions { ModelStore = _store }), NullLoggerFactory.Instance);
    }

    public void Dispose()
    {
        _host.Dispose();
        _dir.Dispose();
    }

    private void AssertScrubbed(StrataException e)
    {
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.DoesNotContain(_dir.Path, e.Message, StringComparison.Ordinal);
        Assert.Contains("pkg", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BrokenTokenizerJsonIsReportedWithoutTheSilosPath()
    {
        // Was a ModelFormatException naming the absolute path of tokenizer.json on the silo.
        File.WriteAllText(Path.Combine(_store, "pkg", "tokenizer.json"), "{not json");
        var e = Assert.Throws<StrataException>(() => new TokenizerCache(_host).Get("pkg"));
        AssertScrubbed(e);
        Assert.Contains("pkg/tokenizer.json", e.Message, StringComparison.Ordinal);
    }

    [PermissionsFact]
    public void UnreadableTokenizerJsonIsReportedWithoutTheSilosPath()
    {
        // Was the UnauthorizedAccessException "Access to the path '/...' is denied." from the tokenizer's load.
        PermissionsFactAttribute.MakeUnreadable(Path.Combine(_store, "pkg", "tokenizer.json"));
        var e = Assert.Throws<StrataException>(() => new TokenizerCache(_host).Get("pkg"));
        AssertScrubbed(e);
        Assert.Contains("pkg/tokenizer.json: cannot be read: Access to the path 'tokenizer.json' is denied", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BrokenTokenizerConfigIsReportedWithoutTheSilosPathWhenRenderingChat()
    {
        File.WriteAllText(Path.Combine(_store, "pkg", "tokenizer_config.json"), "[1,");
        var e = Assert.Throws<StrataException>(() => new TokenizerCache(_host).RenderChat("pkg", "stories", [new ChatTurn("user", "hi")]));
        AssertScrubbed(e);
    }
}
