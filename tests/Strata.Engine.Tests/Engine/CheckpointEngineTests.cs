using Microsoft.Extensions.Logging;
using Strata.Engine.Graph;
using Strata.Engine.Runtime;
using Strata.Models;
using Strata.Models.Checkpoints;
using Strata.Models.Packaging;
using Strata.Models.Synthetic;

namespace Strata.Engine.Tests.Engine;

/// <summary>The engine on synthetic checkpoints written to disk: sharded, BF16, packaged.</summary>
public sealed class CheckpointEngineTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "strata-engine-" + Guid.NewGuid().ToString("N")[..12]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static readonly int[] Prompt = [1, 300, 301, 40, 77, 120, 5];

    private string Synth(string name, SyntheticOptions o)
    {
        string path = Path.Combine(_dir, name);
        SyntheticCheckpoint.Write(o, path);
        return path;
    }

    [Fact]
    public void Sharded_bf16_source_matches_reference()
    {
        string path = Synth("bf16", SyntheticOptions.Preset("tiny") with { Layers = 3, DType = TensorDType.BF16, Shards = 3, Seed = 4 });
        using var checkpoint = HfCheckpoint.Open(path);
        Assert.Equal(3, checkpoint.Files.Count);
        EngineAgreement.AssertAgrees(checkpoint.Config, checkpoint.Tensors, Prompt, newTokens: 8, 1, 2, 3);
    }

    [Fact]
    public void Tied_multi_head_checkpoint_through_an_fp16_package_matches_reference()
    {
        string src = Synth("src", SyntheticOptions.Preset("tiny") with { KvHeads = 4, Tied = true, Seed = 9 });
        string pkg = Path.Combine(_dir, "pkg");
        ModelImporter.Import(src, pkg, new ImportOptions { DType = TensorDType.F16 });
        using var model = ModelLoader.Open(pkg);
        EngineAgreement.AssertAgrees(model.Config, model.Tensors, Prompt, newTokens: 8, 1, 2);
    }

    [Fact]
    public void Stage_loads_only_its_own_package_files()
    {
        string src = Synth("src", SyntheticOptions.Preset("tiny") with { Layers = 2, Seed = 2 });
        string pkg = Path.Combine(_dir, "pkg");
        ModelImporter.Import(src, pkg);
        // Tamper with layer 1: a stage of layer 0 still loads; a stage of layer 1 is refused naming the file.
        string layer1 = Path.Combine(pkg, PackageManifest.LayerFile(1));
        var bytes = File.ReadAllBytes(layer1);
        bytes[^1] ^= 1;
        File.WriteAllBytes(layer1, bytes);

        using var model = ModelLoader.Open(pkg);
        using (var first = model.OpenTensors(0, 1, includeEmbedding: true, includeHead: false))
        using (var stage = StageRuntime.Load(model.Config, first, new StageSpec(0, 1, 2), new EngineOptions { MaxContext = 16 }))
            Assert.True(stage.Stage.IsFirst);
        var e = Assert.Throws<ModelFormatException>(() => model.OpenTensors(1, 2, includeEmbedding: false, includeHead: true));
        Assert.Contains("layer-00001.safetensors", e.Message);
    }

    [Fact]
    public void Fp16_graph_agrees_with_fp32_within_half_precision()
    {
        string src = Synth("src", SyntheticOptions.Preset("tiny") with { Seed = 6 });
        using var checkpoint = HfCheckpoint.Open(src);
        using var fp32 = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, 2, new EngineOptions { MaxContext = 32 });
        using var fp16 = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, 2, new EngineOptions { MaxContext = 32, Precision = ComputeType.Float16 });
        Assert.Equal(ComputeType.Float16, fp16.Stages[0].Compute);
        using var a = fp32.NewSequence();
        using var b = fp16.NewSequence();
        var la = a.Forward(Prompt);
        var lb = b.Forward(Prompt);
        float scale = la.Max(Math.Abs);
        Assert.True(EngineAgreement.MaxAbsDiff(la, lb) < 0.02f * scale + 0.02f, "fp16 logits diverge from fp32");
    }

    [Fact]
    public void Cuda_that_cannot_load_falls_back_to_the_cpu_and_says_so()
    {
        if (Environment.GetEnvironmentVariable("STRATA_TEST_CUDA") == "1") return; // a machine with CUDA takes the real path
        string src = Synth("src", SyntheticOptions.Preset("tiny") with { Seed = 6 });
        using var checkpoint = HfCheckpoint.Open(src);
        var logger = new ListLogger();
        using var pipeline = LocalPipeline.Load(checkpoint.Config, checkpoint.Tensors, 1,
            new EngineOptions { MaxContext = 16, Device = DeviceSpec.Parse("cuda:0") }, logger: logger);
        if (pipeline.Stages[0].Device.IsCuda) return; // CUDA really loaded here
        Assert.Equal(ComputeType.Float32, pipeline.Stages[0].Compute);
        Assert.Contains(logger.Messages, m => m.Contains("falls back to the CPU", StringComparison.Ordinal));
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Messages { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add(formatter(state, exception));
    }
}
