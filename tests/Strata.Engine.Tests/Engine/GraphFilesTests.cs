using Onnx;
using Strata.Engine.Graph;
using Strata.Engine.Tests.Reference;
using Strata.Models.Config;

namespace Strata.Engine.Tests.Engine;

public sealed class GraphFilesTests
{
    private static readonly LlamaConfig Config = new()
    {
        Architecture = "LlamaForCausalLM", HiddenSize = 64, IntermediateSize = 96, NumLayers = 2, NumHeads = 4,
        NumKvHeads = 2, HeadDim = 16, VocabSize = 128, MaxPositionEmbeddings = 64, RmsNormEps = 1e-5, RopeTheta = 10000,
        AttentionBias = false, TieWordEmbeddings = false,
    };

    [Fact]
    public void A_stage_graph_keeps_its_weights_in_an_external_file_at_aligned_offsets()
    {
        using var w = MemoryTensorSource.Random(Config, seed: 1);
        string dir = Path.Combine(Path.GetTempPath(), "strata-graph-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = StageGraphBuilder.Write(Config, w, new StageSpec(0, 2, 2), 32, ComputeType.Float32, dir);
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            long weightsFile = new FileInfo(Path.Combine(dir, "stage.weights")).Length;
            var external = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External).ToList();

            Assert.NotEmpty(external);
            Assert.All(model.Graph.Initializer, t => Assert.True(t.RawData.IsEmpty, $"{t.Name} carries inline raw data"));
            long total = 0;
            foreach (var t in external)
            {
                var entries = t.ExternalData.ToDictionary(e => e.Key, e => e.Value);
                Assert.Equal("stage.weights", entries["location"]);
                long offset = long.Parse(entries["offset"], System.Globalization.CultureInfo.InvariantCulture);
                long length = long.Parse(entries["length"], System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(0, offset % 4096);
                Assert.True(offset + length <= weightsFile);
                Assert.Equal(t.Dims.Aggregate(4L, (a, d) => a * d), length);
                total += length;
            }
            Assert.True(new FileInfo(path).Length < total / 4, "the model file should hold the structure only");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
