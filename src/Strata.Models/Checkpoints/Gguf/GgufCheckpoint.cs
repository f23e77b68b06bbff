using Strata.Models.Config;

namespace Strata.Models.Checkpoints.Gguf;

/// <summary>
/// A GGUF model file (llama.cpp, Ollama) opened as a Llama-family checkpoint: its metadata as a
/// <see cref="LlamaConfig"/>, its tensors under Hugging Face names (<see cref="GgufTensorSource"/>), and its
/// tokenizer as Hugging Face tokenizer files (<see cref="GgufTokenizerFiles"/>). Opening it validates the metadata
/// and every expected tensor's presence and shape, so later reads cannot fail on a malformed file.
/// </summary>
public sealed class GgufCheckpoint : IDisposable
{
    private GgufCheckpoint(GgufFile file, GgufMetadata metadata, string architecture, LlamaConfig config, GgufTensorSource tensors)
    {
        File = file;
        Metadata = metadata;
        Architecture = architecture;
        Config = config;
        Tensors = tensors;
    }

    /// <summary>The file.</summary>
    public GgufFile File { get; }

    /// <summary>Its metadata.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>The GGUF architecture: <c>llama</c> or <c>qwen2</c>.</summary>
    public string Architecture { get; }

    /// <summary>The model shape.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The weights under Hugging Face names.</summary>
    public GgufTensorSource Tensors { get; }

    /// <summary>The file's path.</summary>
    public string Path => File.Path;

    /// <summary>Whether <paramref name="path"/> names a GGUF file (by its magic, or a <c>.gguf</c> name).</summary>
    public static bool IsGgufFile(string path) =>
        System.IO.File.Exists(path) && (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || GgufFile.LooksLikeGguf(path));

    /// <summary>Opens and validates a GGUF file.</summary>
    /// <exception cref="ModelFormatException">The file is malformed or describes a model Strata cannot run.</exception>
    public static GgufCheckpoint Open(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            var metadata = new GgufMetadata(file);
            string arch = metadata.Architecture;
            var config = metadata.ToConfig();
            Validate(file, config);
            GgufTokenizerFiles.Check(metadata, config);
            return new GgufCheckpoint(file, metadata, arch, config, new GgufTensorSource(file, config, arch));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static void Validate(GgufFile file, LlamaConfig config)
    {
        foreach (var expected in LlamaTensors.Expected(config))
        {
            string name = GgufTensorNames.FromHf(expected.Name)!;
            if (!file.Tensors.TryGetValue(name, out var t))
                throw new ModelFormatException(file.Path, name,
                    $"tensor is missing (the metadata implies {expected.Name} of shape [{string.Join(", ", expected.Shape)}])");
            if (!t.Shape.SequenceEqual(expected.Shape))
                throw new ModelFormatException(file.Path, name,
                    $"shape {t.ShapeText} does not match [{string.Join(", ", expected.Shape)}] implied by the metadata");
            if (t.Type.IsQuantized() && expected.Shape.Length != 2)
                throw new ModelFormatException(file.Path, name, $"a {t.Type} vector is not supported (norms and biases must be float)");
        }
    }

    /// <inheritdoc />
    public void Dispose() => Tensors.Dispose();
}
