using Strata.Models.Checkpoints;
using Strata.Models.Checkpoints.Gguf;
using Strata.Models.Config;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>What <see cref="ModelImporter"/> reads from: a Hugging Face folder or a GGUF file.</summary>
internal abstract class ImportSource : IDisposable
{
    /// <summary>The source's full path.</summary>
    public abstract string Where { get; }

    /// <summary>The model shape.</summary>
    public abstract LlamaConfig Config { get; }

    /// <summary>The weights under Hugging Face names, in Hugging Face's layout.</summary>
    public abstract ITensorSource Tensors { get; }

    /// <summary>The package dtype when the options give none.</summary>
    public abstract TensorDType DefaultDType { get; }

    /// <summary>The manifest's record of the source.</summary>
    public abstract PackageSource Describe();

    /// <summary>The package's quantization, given what was asked (<c>--quant</c>, or null).</summary>
    public virtual QuantizationScheme? Quantization(QuantizationScheme? requested) => requested;

    /// <summary>Whether a tensor's bytes sit in <see cref="TensorInfo.File"/> exactly as <see cref="ITensorSource.ReadRaw"/> gives them.</summary>
    public abstract bool IsStoredAsIs(string name);

    /// <summary>A weight already quantized in the package's scheme, read without going through float; null to quantize.</summary>
    public virtual QuantizedMatrix? ReadQuantized(string name, QuantizationScheme scheme) => null;

    /// <summary>Writes or copies the tokenizer and config files into <paramref name="dir"/>; returns their names.</summary>
    public abstract IReadOnlyList<string> WriteAuxiliaryFiles(string dir);

    /// <inheritdoc />
    public abstract void Dispose();

    /// <summary>Opens <paramref name="path"/>: a GGUF file, else a Hugging Face model folder.</summary>
    public static ImportSource Open(string path) =>
        GgufCheckpoint.IsGgufFile(path) || path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)
            ? new Gguf(GgufCheckpoint.Open(path))
            : new HuggingFace(HfCheckpoint.Open(path));

    private sealed class HuggingFace(HfCheckpoint checkpoint) : ImportSource
    {
        public override string Where => checkpoint.Directory;
        public override LlamaConfig Config => checkpoint.Config;
        public override ITensorSource Tensors => checkpoint;
        public override TensorDType DefaultDType => checkpoint.Get(LlamaTensors.Embed, Where).DType;
        public override bool IsStoredAsIs(string name) => true;

        public override PackageSource Describe() =>
            new("huggingface", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Where))), DefaultDType.UserName(),
                checkpoint.Files.Select(f => Path.GetFileName(f)).ToList());

        public override IReadOnlyList<string> WriteAuxiliaryFiles(string dir)
        {
            var result = new List<string>();
            foreach (string name in ModelImporter.CopiedFiles)
            {
                string from = Path.Combine(Where, name);
                if (!File.Exists(from)) continue;
                File.Copy(from, Path.Combine(dir, name));
                result.Add(name);
            }
            return result;
        }

        public override void Dispose() => checkpoint.Dispose();
    }

    /// <summary>
    /// A GGUF file. A file whose projections are already quantized keeps that: the package's scheme is the bits of
    /// the projections' most common quantized type (by parameters), block 32; Q8_0 and Q4_0 weights map onto it
    /// directly, other quantized types (Q4_K, Q6_K) and the other width are dequantized and requantized to it.
    /// </summary>
    private sealed class Gguf(GgufCheckpoint checkpoint) : ImportSource
    {
        public override string Where => checkpoint.Path;
        public override LlamaConfig Config => checkpoint.Config;
        public override ITensorSource Tensors => checkpoint.Tensors;
        public override TensorDType DefaultDType => checkpoint.Tensors.Tensor(LlamaTensors.Embed).Type.FloatDType() ?? TensorDType.F32;
        public override bool IsStoredAsIs(string name) => checkpoint.Tensors.IsStoredAsIs(name);

        public override PackageSource Describe()
        {
            var types = checkpoint.Tensors.Names.Select(n => checkpoint.Tensors.Tensor(n))
                .GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ElementCount)).ThenBy(g => g.Key).Select(g => g.Key.ToString().ToLowerInvariant());
            return new PackageSource("gguf", Path.GetFileNameWithoutExtension(Where), string.Join("+", types), [Path.GetFileName(Where)]);
        }

        private static int Bits(GgmlType t) => t switch
        {
            GgmlType.Q8_0 or GgmlType.Q6_K => 8,
            GgmlType.Q4_0 or GgmlType.Q4_K => 4,
            _ => 0,
        };

        public override QuantizationScheme? Quantization(QuantizationScheme? requested)
        {
            var c = Config;
            var projections = Enumerable.Range(0, c.NumLayers)
                .SelectMany(i => QuantizationScheme.LinearWeights(i).Select(n => (Layer: i, Tensor: checkpoint.Tensors.Tensor(n))))
                .ToList();
            var quantized = projections.Where(p => Bits(p.Tensor.Type) > 0).ToList();
            if (quantized.Count == 0) return requested; // a float file: --quant quantizes it as it would safetensors
            int bits = quantized.GroupBy(p => Bits(p.Tensor.Type)).OrderByDescending(g => g.Sum(p => p.Tensor.ElementCount)).First().Key;
            string types = string.Join(", ", quantized.Select(p => p.Tensor.Type).Distinct());
            if (requested is not null && (requested.Bits != bits || requested.BlockSize != 32))
                throw new ModelFormatException(Where, null,
                    $"the file is already quantized ({types} projections, imported as int{bits} block 32); import it without --quant, or with --quant int{bits} --block 32");
            var floatLayers = Enumerable.Range(0, c.NumLayers)
                .Where(i => projections.Where(p => p.Layer == i).All(p => Bits(p.Tensor.Type) == 0))
                .Union(requested?.FloatLayers ?? []).Order().ToList();
            bool head = !c.TieWordEmbeddings && checkpoint.Tensors.Tensor(LlamaTensors.LmHead).Type.IsQuantized();
            return new QuantizationScheme(bits, 32) { FloatLayers = floatLayers, QuantizedHead = head || requested?.QuantizedHead == true };
        }

        public override QuantizedMatrix? ReadQuantized(string name, QuantizationScheme scheme) =>
            scheme.BlockSize == 32 ? checkpoint.Tensors.ReadNative(name, scheme.Bits) : null;

        public override IReadOnlyList<string> WriteAuxiliaryFiles(string dir)
        {
            // The package's config.json states the package's shape; the importer records its dtype in the manifest.
            GgufTokenizerFiles.Write(checkpoint.Metadata, Config, dir);
            return GgufTokenizerFiles.FileNames;
        }

        public override void Dispose() => checkpoint.Dispose();
    }
}
