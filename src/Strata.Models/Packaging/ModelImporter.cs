using System.Buffers;
using Microsoft.Win32.SafeHandles;
using Strata.Models.Checkpoints;
using Strata.Models.Quantization;

namespace Strata.Models.Packaging;

/// <summary>
/// Turns a Hugging Face checkpoint folder or a GGUF file into a Strata model package (<c>strata import</c>). The
/// source is validated first; the package is written into a temporary folder beside the destination and renamed into place
/// at the end, so a failed import never leaves a half-written package. The output depends only on the source's
/// bytes, its folder or file name and the options: importing twice gives byte-identical packages.
/// </summary>
public static class ModelImporter
{
    /// <summary>Files copied from the source when present (tokenizers of both sentencepiece and byte-level kinds).</summary>
    public static readonly IReadOnlyList<string> CopiedFiles =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
        "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja",
    ];

    /// <summary>Imports <paramref name="sourceDir"/> into a new package at <paramref name="packageDir"/>.</summary>
    /// <param name="sourceDir">A Hugging Face model folder, or a GGUF file (see <see cref="Checkpoints.Gguf.GgufCheckpoint"/>).</param>
    /// <param name="packageDir">The package folder to create (must not exist or be empty, unless <see cref="ImportOptions.Overwrite"/>).</param>
    /// <param name="options">Dtype, overwrite and name; null for defaults.</param>
    /// <param name="progress">Weight bytes written and the current tensor, reported as they are written.</param>
    /// <returns>The new package.</returns>
    /// <exception cref="ModelFormatException">The source is malformed (the message names the file and tensor or field).</exception>
    /// <exception cref="IOException">The destination exists and may not be replaced.</exception>
    public static ModelPackage Import(string sourceDir, string packageDir, ImportOptions? options = null, IProgress<ImportProgress>? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(sourceDir);
        ArgumentException.ThrowIfNullOrEmpty(packageDir);
        options ??= new ImportOptions();
        string source = Path.TrimEndingDirectorySeparator(Path.GetFullPath(sourceDir));
        string dest = Path.TrimEndingDirectorySeparator(Path.GetFullPath(packageDir));
        if (string.Equals(source, dest, StringComparison.Ordinal))
            throw new IOException($"{packageDir}: the package cannot be written into its own source folder");
        bool replace = CheckDestination(dest, options.Overwrite);

        using var checkpoint = ImportSource.Open(sourceDir);
        string parent = Path.GetDirectoryName(dest) ?? throw new IOException($"{packageDir}: has no parent folder");
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(dest)}.importing-{Path.GetRandomFileName()}");
        Directory.CreateDirectory(temp);
        try
        {
            var manifest = WritePackage(checkpoint, temp, options, progress);
            File.WriteAllText(Path.Combine(temp, PackageManifest.FileName), manifest.ToJsonText());
            MoveIntoPlace(temp, dest, replace);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        return ModelPackage.Open(dest, verify: false);
    }

    /// <summary>Returns whether an existing package must be replaced; throws when the destination may not be written.</summary>
    private static bool CheckDestination(string dest, bool overwrite)
    {
        if (File.Exists(dest)) throw new IOException($"{dest}: exists and is a file; give a folder for the package");
        if (!Directory.Exists(dest)) return false;
        if (!Directory.EnumerateFileSystemEntries(dest).Any()) return true;
        if (!overwrite)
            throw new IOException($"{dest}: the destination exists and is not empty; choose another folder, or replace the package there (ImportOptions.Overwrite; `strata import --force`)");
        if (!ModelPackage.IsPackage(dest))
            throw new IOException($"{dest}: is not empty and is not a Strata model package (no {PackageManifest.FileName}); refusing to replace it");
        return true;
    }

    private static PackageManifest WritePackage(ImportSource checkpoint, string temp, ImportOptions options, IProgress<ImportProgress>? progress)
    {
        var config = checkpoint.Config;
        var dtype = options.DType ?? checkpoint.DefaultDType;
        var q = checkpoint.Quantization(options.Quantization);
        q?.Validate(config);
        var embedWeights = PackageTensors.Embedding(config, dtype);
        var layerWeights = Enumerable.Range(0, config.NumLayers).Select(i => PackageTensors.Layer(config, dtype, q, i)).ToList();
        var headWeights = PackageTensors.Head(config, dtype, q);
        long total = embedWeights.Concat(layerWeights.SelectMany(l => l)).Concat(headWeights).Sum(w => w.Bytes);
        var copier = new TensorCopier(checkpoint, dtype, total, progress);
        try
        {
            progress?.Report(new ImportProgress(0, total, null));
            Directory.CreateDirectory(Path.Combine(temp, "layers"));
            var embedding = copier.WriteFile(temp, PackageManifest.EmbeddingFile, embedWeights);
            var layers = Enumerable.Range(0, config.NumLayers)
                .Select(i => new PackageLayer(i, copier.WriteFile(temp, PackageManifest.LayerFile(i), layerWeights[i])))
                .ToList();
            var head = copier.WriteFile(temp, PackageManifest.HeadFile, headWeights);
            var files = checkpoint.WriteAuxiliaryFiles(temp)
                .Select(name => Path.Combine(temp, name))
                .Select(path => new PackageFile(Path.GetFileName(path), new FileInfo(path).Length, FileHash.Sha256(path)))
                .ToList();
            progress?.Report(new ImportProgress(total, total, null));
            var described = checkpoint.Describe();
            return new PackageManifest
            {
                Name = options.Name ?? described.Name,
                // The package's config states the package's dtype, not the source's.
                Config = config with { TorchDtype = PackageManifest.TorchDtypeName(dtype) },
                DType = dtype,
                Quant = q,
                Source = described,
                Embedding = embedding,
                Layers = layers,
                Head = head,
                Files = files,
            };
        }
        finally
        {
            copier.Dispose();
        }
    }

    private static void MoveIntoPlace(string temp, string dest, bool replace)
    {
        if (!replace)
        {
            Directory.Move(temp, dest);
            return;
        }
        // Keep the old package until the new one is in place, so a failed rename loses nothing.
        string old = Path.Combine(Path.GetDirectoryName(dest)!, $".{Path.GetFileName(dest)}.replaced-{Path.GetRandomFileName()}");
        Directory.Move(dest, old);
        try
        {
            Directory.Move(temp, dest);
        }
        catch
        {
            Directory.Move(old, dest);
            throw;
        }
        TryDelete(old);
    }

    private static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover hidden temporary folder is harmless and named for what it is.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Streams tensors from the checkpoint's files into package files, converting dtype in chunks. A tensor
    /// that is not stored as is (a GGUF tensor that is quantized or permuted) is read whole as float32 instead, once.</summary>
    private sealed class TensorCopier(ImportSource checkpoint, TensorDType dtype, long total, IProgress<ImportProgress>? progress) : IDisposable
    {
        private readonly Dictionary<string, SafeFileHandle> _handles = new(StringComparer.Ordinal);
        private long _done;
        private (string Name, float[] Values)? _floats;

        public PackageFile WriteFile(string root, string relative, IEnumerable<PackedWeight> weights)
        {
            var writer = new SafetensorsWriter();
            long parameters = 0;
            foreach (var w in weights)
            {
                var info = checkpoint.Tensors.Get(w.SourceName, checkpoint.Where);
                // A tied model's quantized head is a second copy of the embedding, not more parameters.
                if (w.SourceName == w.Weight.Name) parameters += info.ElementCount;
                if (w.Quant is not null)
                    AddQuantized(writer, w, w.Quant, info);
                else
                    writer.Add(w.Weight.Name, dtype, info.Shape, (offset, dest) => Fill(info, offset, dest));
            }
            string path = Path.Combine(root, relative.Replace('/', Path.DirectorySeparatorChar));
            writer.Write(path, (name, n) =>
            {
                _done += n;
                progress?.Report(new ImportProgress(_done, total, name));
            });
            return new PackageFile(relative, new FileInfo(path).Length, FileHash.Sha256(path), parameters);
        }

        /// <summary>Quantizes a weight when the writer first asks for its bytes, so one matrix at a time is in memory.</summary>
        private void AddQuantized(SafetensorsWriter writer, PackedWeight w, QuantizationScheme q, TensorInfo info)
        {
            int rows = (int)w.Weight.Shape[0], cols = (int)w.Weight.Shape[1];
            QuantizedMatrix? m = null;
            QuantizedMatrix Get()
            {
                if (m is not null) return m;
                if (checkpoint.ReadQuantized(info.Name, q) is { } native) return m = native;
                var values = new float[(long)rows * cols];
                checkpoint.Tensors.ReadFloat32(info.Name, values);
                try
                {
                    return m = BlockQuantizer.Quantize(values, rows, cols, q.Bits, q.BlockSize);
                }
                catch (ArgumentException e)
                {
                    throw new ModelFormatException(info.File, info.Name, $"cannot be quantized: {e.Message}", e);
                }
            }
            writer.Add(w.Stored[0].Name, TensorDType.U8, w.Stored[0].Shape, (offset, dest) => Get().Data.AsSpan((int)offset, dest.Length).CopyTo(dest));
            writer.Add(w.Stored[1].Name, TensorDType.F32, w.Stored[1].Shape,
                (offset, dest) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Get().Scales.AsSpan()).Slice((int)offset, dest.Length).CopyTo(dest));
            writer.Add(w.Stored[2].Name, TensorDType.U8, w.Stored[2].Shape, (offset, dest) =>
            {
                Get().ZeroPoints.AsSpan((int)offset, dest.Length).CopyTo(dest);
                if (offset + dest.Length == m!.ZeroPoints.Length) m = null; // the last of its three tensors: let it go
            });
        }

        private void Fill(TensorInfo info, long outOffset, Span<byte> dest)
        {
            if (!checkpoint.IsStoredAsIs(info.Name))
            {
                FillFromFloats(info, outOffset, dest);
                return;
            }
            var handle = Handle(info.File);
            if (info.DType == dtype)
            {
                ReadExactly(handle, dest, info.Offset + outOffset, info);
                return;
            }
            int n = dest.Length / dtype.Size();
            int srcBytes = n * info.DType.Size();
            byte[] raw = ArrayPool<byte>.Shared.Rent(srcBytes);
            float[] values = ArrayPool<float>.Shared.Rent(n);
            try
            {
                ReadExactly(handle, raw.AsSpan(0, srcBytes), info.Offset + outOffset / dtype.Size() * info.DType.Size(), info);
                TensorDTypes.ToFloat32(info.DType, raw.AsSpan(0, srcBytes), values.AsSpan(0, n));
                TensorDTypes.FromFloat32(dtype, values.AsSpan(0, n), dest);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(raw);
                ArrayPool<float>.Shared.Return(values);
            }
        }

        private void FillFromFloats(TensorInfo info, long outOffset, Span<byte> dest)
        {
            if (_floats is not { } f || f.Name != info.Name)
            {
                _floats = null; // one tensor at a time in memory
                var values = new float[info.ElementCount];
                checkpoint.Tensors.ReadFloat32(info.Name, values);
                _floats = f = (info.Name, values);
            }
            int n = dest.Length / dtype.Size();
            long start = outOffset / dtype.Size();
            TensorDTypes.FromFloat32(dtype, f.Values.AsSpan((int)start, n), dest);
            if (start + n == f.Values.LongLength) _floats = null;
        }

        private static void ReadExactly(SafeFileHandle handle, Span<byte> dest, long offset, TensorInfo info)
        {
            while (dest.Length > 0)
            {
                int read = RandomAccess.Read(handle, dest, offset);
                if (read == 0) throw new ModelFormatException(info.File, info.Name, "the file ended while reading this tensor (it changed during the import?)");
                dest = dest[read..];
                offset += read;
            }
        }

        private SafeFileHandle Handle(string path)
        {
            if (!_handles.TryGetValue(path, out var h))
                _handles[path] = h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            return h;
        }

        public void Dispose()
        {
            foreach (var h in _handles.Values) h.Dispose();
        }
    }
}
