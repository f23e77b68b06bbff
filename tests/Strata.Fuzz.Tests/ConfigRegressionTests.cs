using Strata.Models;
using Strata.Models.Config;

namespace Strata.Fuzz.Tests;

/// <summary>Crashes the config.json fuzzing found, each kept as a plain case.</summary>
public sealed class ConfigRegressionTests
{
    private static ModelFormatException Refused(string json)
    {
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.Parse(json, "m/config.json"));
        Assert.Equal("m/config.json", e.File);
        return e;
    }

    [Fact]
    public void DuplicateFieldIsAFormatError()
    {
        // Was ArgumentException ("An item with the same key has already been added") from JsonObject.
        string json = Seeds.Read("config.json").Replace("\"rms_norm_eps\"", "\"rms_norm_eps\": 1e-5, \"rms_norm_eps\"", StringComparison.Ordinal);
        Assert.Contains("rms_norm_eps", Refused(json).Message);
    }

    [Fact]
    public void LoneSurrogateInAStringFieldIsAFormatErrorNamingIt()
    {
        // Was InvalidOperationException ("incomplete UTF-16 JSON text") from the lazy string read.
        string json = Seeds.Read("config.json").Replace("\"silu\"", "\"\\ud800\"", StringComparison.Ordinal);
        var e = Refused(json);
        Assert.Equal("hidden_act", e.Item);
    }

    [Fact]
    public void LoneSurrogateInAFieldNameIsAFormatError()
    {
        string json = Seeds.Read("config.json").Replace("\"use_cache\"", "\"\\udc00\"", StringComparison.Ordinal);
        Assert.Contains("not valid Unicode", Refused(json).Message);
    }
}
