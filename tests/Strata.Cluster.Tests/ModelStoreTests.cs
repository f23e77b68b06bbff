using Strata.Contracts;
using Strata.Grains.Stages;

namespace Strata.Cluster.Tests;

/// <summary>Package paths are confined to the model store: no absolute paths out of it, no '..', no links out.</summary>
public sealed class ModelStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-store-test-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly string _store;
    private readonly string _outside;

    public ModelStoreTests()
    {
        _store = Path.Combine(_dir, "store");
        _outside = Path.Combine(_dir, "secret");
        Directory.CreateDirectory(Path.Combine(_store, "good", "nested"));
        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_outside, "passwd"), "x");
        Directory.CreateSymbolicLink(Path.Combine(_store, "escape"), _outside);
        Directory.CreateSymbolicLink(Path.Combine(_store, "alias"), Path.Combine(_store, "good"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("good")]
    [InlineData("good/nested")]
    [InlineData("./good")]
    [InlineData("not-there-yet")]
    public void Paths_inside_the_store_resolve_inside_it(string path)
    {
        string resolved = new ModelStore(_store).Resolve(path);
        Assert.StartsWith(_store + Path.DirectorySeparatorChar, resolved);
    }

    [Fact]
    public void An_absolute_path_inside_the_store_is_accepted_and_a_link_within_it_is_followed()
    {
        var store = new ModelStore(_store);
        Assert.Equal(Path.Combine(_store, "good"), store.Resolve(Path.Combine(_store, "good")));
        Assert.Equal(Path.Combine(_store, "good", "nested"), store.Resolve("alias/nested"));
    }

    [Theory]
    [InlineData("../secret", "contains '..'")]
    [InlineData("good/../../secret", "contains '..'")]
    [InlineData("/etc", "outside the model store")]
    [InlineData("escape", "symbolic link that leads out")]
    [InlineData("escape/passwd", "symbolic link that leads out")]
    [InlineData("", "is empty")]
    public void Paths_that_leave_the_store_are_refused_by_name(string path, string says)
    {
        var e = Assert.Throws<StrataException>(() => new ModelStore(_store).Resolve(path));
        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        Assert.Contains(says, e.Message);
        Assert.DoesNotContain(_store, e.Message);
    }

    [Fact]
    public void An_absolute_path_to_a_sibling_of_the_store_is_refused()
    {
        var e = Assert.Throws<StrataException>(() => new ModelStore(_store).Resolve(_outside));
        Assert.Contains("outside the model store", e.Message);
        // A name that only starts like the store is not inside it.
        Assert.Throws<StrataException>(() => new ModelStore(_store).Resolve(_store + "-other/x"));
    }

    [Fact]
    public void Messages_name_files_relative_to_the_store()
    {
        var store = new ModelStore(_store);
        Assert.Equal("good/model.safetensors: bad header", store.Scrub(Path.Combine(_store, "good", "model.safetensors") + ": bad header"));
    }
}
