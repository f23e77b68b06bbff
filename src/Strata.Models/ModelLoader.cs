using Strata.Models.Checkpoints;
using Strata.Models.Config;
using Strata.Models.Packaging;

namespace Strata.Models;

/// <summary>Opens whatever the user points at: a Strata model package or a Hugging Face model folder.</summary>
public static class ModelLoader
{
    /// <summary>Opens the model at <paramref name="path"/>.</summary>
    /// <param name="path">A package folder (with strata-model.json) or a Hugging Face folder (config.json + safetensors).</param>
    /// <param name="verify">For packages: check each weight file's SHA-256 when it is first opened.</param>
    /// <exception cref="ModelFormatException">The folder is neither, or is malformed.</exception>
    public static LoadedModel Open(string path, bool verify = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path) && ModelPackage.IsPackage(path))
            return new LoadedModel(ModelPackage.Open(path, verify));
        if (Directory.Exists(path) && HfCheckpoint.IsCheckpointFolder(path))
            return new LoadedModel(HfCheckpoint.Open(path));
        if (Checkpoints.Gguf.GgufCheckpoint.IsGgufFile(path))
            throw new ModelFormatException(path, null, "a GGUF file is run as a package: import it first (strata import FILE --out PKG)");
        throw new ModelFormatException(path, null,
            "not a Hugging Face model folder (config.json + model.safetensors) or a Strata package (strata-model.json)");
    }
}

/// <summary>
/// A model opened by <see cref="ModelLoader"/>: its config, tensors and tokenizer location, whatever it is stored as.
/// Tensor names are always the Hugging Face ones; a tied model has no <c>lm_head.weight</c>.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly HfCheckpoint? _checkpoint;
    private readonly Lazy<ITensorSource> _all;

    internal LoadedModel(ModelPackage package)
    {
        Package = package;
        Path = package.Directory;
        Config = package.Config;
        TokenizerDirectory = package.Directory;
        Description = $"Strata package '{package.Name}' ({package.Config.Architecture}, {package.Config.NumLayers} layers, {package.DType.UserName()}{(package.Manifest.Quant is { } q ? $", {q.Name} block {q.BlockSize}" : "")}) at {package.Directory}";
        _all = new Lazy<ITensorSource>(package.OpenAll, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    internal LoadedModel(HfCheckpoint checkpoint)
    {
        _checkpoint = checkpoint;
        Path = checkpoint.Directory;
        Config = checkpoint.Config;
        TokenizerDirectory = checkpoint.Directory;
        var dtype = checkpoint.Get(LlamaTensors.Embed, checkpoint.Directory).DType;
        Description = $"Hugging Face checkpoint ({checkpoint.Config.Architecture}, {checkpoint.Config.NumLayers} layers, {dtype.UserName()}, {checkpoint.Files.Count} file(s)) at {checkpoint.Directory}";
        _all = new Lazy<ITensorSource>(() => checkpoint);
    }

    /// <summary>The folder the model was opened from.</summary>
    public string Path { get; }

    /// <summary>The model shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The folder holding tokenizer.json (and tokenizer_config.json, generation_config.json, ...).</summary>
    public string TokenizerDirectory { get; }

    /// <summary>One line saying what was opened, for logs.</summary>
    public string Description { get; }

    /// <summary>The package, when the model is one (null for a Hugging Face folder).</summary>
    public ModelPackage? Package { get; }

    /// <summary>Every tensor of the model. For a package, the weight files are opened (and verified) on first use.
    /// Owned by this object.</summary>
    public ITensorSource Tensors => _all.Value;

    /// <summary>
    /// The tensors of one pipeline stage: layers [<paramref name="firstLayer"/>, <paramref name="endLayer"/>), plus the
    /// embedding and/or the final norm and LM head (a tied head brings the embedding). For a package only those
    /// files are opened and verified. The caller disposes the result; for a Hugging Face folder it is a view of
    /// this model's files and must not be used after this object is disposed.
    /// </summary>
    public ITensorSource OpenTensors(int firstLayer, int endLayer, bool includeEmbedding, bool includeHead)
    {
        if (Package is not null) return Package.OpenTensors(firstLayer, endLayer, includeEmbedding, includeHead);
        var names = TensorSelection.Select(Config, firstLayer, endLayer, includeEmbedding, includeHead).Select(t => t.Name);
        return new TensorSubset(_checkpoint!, names);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_checkpoint is not null) _checkpoint.Dispose();
        else if (_all.IsValueCreated) _all.Value.Dispose();
    }
}
