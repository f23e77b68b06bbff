using Strata.Testing;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Fuzz.Tests;

/// <summary>
/// Tokenizer files that exist but cannot be read. Each was the system's <see cref="UnauthorizedAccessException"/>
/// or <see cref="IOException"/>, whose message is the silo's absolute path, and is now a
/// <see cref="ModelFormatException"/> naming the file, which the session's tokenizer cache scrubs.
/// </summary>
public sealed class UnreadableFileRegressionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public UnreadableFileRegressionTests()
    {
        foreach (string file in Directory.GetFiles(Seeds.ModelDir)) File.Copy(file, _dir.File(Path.GetFileName(file)));
    }

    public void Dispose() => _dir.Dispose();

    private void AssertUnreadable(string name)
    {
        PermissionsFactAttribute.MakeUnreadable(_dir.File(name));
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(_dir.Path));
        Assert.Equal(_dir.File(name), e.File);
        Assert.StartsWith("cannot be read: ", e.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain(_dir.Path, e.Problem, StringComparison.Ordinal); // only File, which the silo scrubs, has the path
        Assert.Contains($"'{name}'", e.Problem, StringComparison.Ordinal);
        Assert.Contains("is denied", e.Problem, StringComparison.Ordinal);
    }

    [PermissionsFact]
    public void UnreadableTokenizerJsonIsAFormatError() => AssertUnreadable("tokenizer.json");

    [PermissionsFact]
    public void UnreadableTokenizerConfigIsAFormatError() => AssertUnreadable("tokenizer_config.json");

    [PermissionsFact]
    public void UnreadableTokenizerModelIsAFormatError()
    {
        File.Delete(_dir.File("tokenizer.json"));
        AssertUnreadable("tokenizer.model");
    }

    [Fact]
    public void AccessDeniedIsAFormatErrorWithoutThePath()
    {
        // The permission case through the same catch, whoever runs the tests: opening a folder as a file is refused
        // with the UnauthorizedAccessException that a file of mode 000 gives.
        string folder = _dir.File("tokenizer.json.d");
        Directory.CreateDirectory(folder);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerJson.Parse(folder));
        Assert.IsType<UnauthorizedAccessException>(e.InnerException);
        Assert.Equal(folder, e.File);
        Assert.Equal("cannot be read: Access to the path 'tokenizer.json.d' is denied. (make the model's files readable to the process that loads them)", e.Problem);
    }
}
