using System.Collections.Concurrent;
using Strata.Grains.Stages;
using Strata.Models;
using Strata.Models.Tokenization;

namespace Strata.Grains;

/// <summary>Tokenizers of deployed packages, loaded once per silo.</summary>
public sealed class TokenizerCache(StageHost host)
{
    private readonly ConcurrentDictionary<string, Lazy<ITokenizer>> _byPath = new(StringComparer.Ordinal);

    /// <summary>The tokenizer of the package at <paramref name="packagePath"/> (resolved against the model store).</summary>
    public ITokenizer Get(string packagePath)
    {
        string resolved = host.Resolve(packagePath);
        return _byPath.GetOrAdd(resolved, p => new Lazy<ITokenizer>(() =>
        {
            using var model = ModelLoader.Open(p, verify: false);
            return TokenizerLoader.Load(model.TokenizerDirectory);
        })).Value;
    }
}
