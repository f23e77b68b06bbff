using Strata.Models.Planning;
using static Strata.Models.Tests.Planning.PlanAssert;

namespace Strata.Models.Tests.Planning;

public class StagePlannerTests
{
    private static readonly SiloCapacity[] Mixed =
    [
        new("silo-c", "cpu", 16 * GB),
        new("silo-a", "cuda:0", 80 * GB),
        new("silo-b", "cuda:0", 24 * GB),
    ];

    [Fact]
    public void Heterogeneous_cluster_fills_the_biggest_silo_first()
    {
        // A 70B at about 9 bits a weight (80 x 1.2 GB) with 8192 KV positions needs ~100.8 GB: more than
        // the 80 GB GPU (72 GB usable) and the 24 GB one together (93.6 GB), so the CPU takes the tail.
        var model = Llama70B(1_200_000_000);
        var options = new PlanOptions { KvTokens = 8192 };
        var plan = StagePlanner.Plan(model, Mixed, options);

        Valid(plan, model, Mixed, options);
        Assert.Equal(["silo-a", "silo-b", "silo-c"], plan.Stages.Select(s => s.SiloId));
        Assert.Equal([57, 17, 6], plan.Stages.Select(s => s.LayerCount));
    }

    [Fact]
    public void Model_that_two_silos_hold_takes_two_stages()
    {
        var model = Llama70B(1_000_000_000); // ~82.8 GB with 2048 KV positions
        var options = new PlanOptions();
        var plan = StagePlanner.Plan(model, Mixed, options);

        Valid(plan, model, Mixed, options);
        Assert.Equal(2, plan.Stages.Count);
        Assert.Equal("silo-a", plan.Stages[0].SiloId);
        Assert.Equal("silo-b", plan.Stages[1].SiloId);
        Assert.True(plan.Stages[0].LayerCount > 60, plan.Describe());
    }

    [Fact]
    public void Small_model_takes_one_stage_on_the_biggest_silo()
    {
        var model = Llama70B(400_000_000); // ~34.8 GB: only the 80 GB silo holds it whole
        var plan = StagePlanner.Plan(model, Mixed, new PlanOptions());
        var stage = Assert.Single(plan.Stages);
        Assert.Equal("silo-a", stage.SiloId);
        Assert.Equal((0, 80), (stage.FirstLayer, stage.EndLayer));
        Assert.Equal(model.WeightBytes, stage.WeightBytes);

        var tiny = Uniform(4, GB);
        Assert.Equal("silo-a", Assert.Single(StagePlanner.Plan(tiny, Mixed, new PlanOptions()).Stages).SiloId);
    }

    [Fact]
    public void Accelerator_is_preferred_over_a_bigger_cpu_and_speed_over_memory()
    {
        SiloCapacity[] silos = [new("host", "cpu", 256 * GB), new("gpu", "cuda:0", 24 * GB)];
        Assert.Equal("gpu", Assert.Single(StagePlanner.Plan(Uniform(8, GB), silos, new PlanOptions()).Stages).SiloId);
        // Only the CPU holds it whole: one stage there beats two.
        Assert.Equal("host", Assert.Single(StagePlanner.Plan(Uniform(40, GB), silos, new PlanOptions()).Stages).SiloId);

        SiloCapacity[] measured = [new("big", "cuda:0", 80 * GB, Speed: 1), new("fast", "cuda:1", 24 * GB, Speed: 3)];
        Assert.Equal("fast", Assert.Single(StagePlanner.Plan(Uniform(8, GB), measured, new PlanOptions()).Stages).SiloId);
    }

    [Fact]
    public void Model_too_big_for_the_cluster_says_what_it_needs_and_what_there_is()
    {
        // A 70B in fp16 (80 x 1.7 GB) does not fit 120 GB of devices.
        var e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Llama70B(1_700_000_000), Mixed, new PlanOptions()));
        Assert.Contains("needs 138.8 GB", e.Message);
        Assert.Contains("weights 138.1 GB + KV 671.1 MB for 2048 tokens", e.Message);
        Assert.Contains("but the cluster's 3 silo(s) offer 108.0 GB usable: ", e.Message);
        Assert.Contains("80.0 GB cuda:0 at silo-a (72.0 GB usable)", e.Message);
        Assert.Contains("16.0 GB cpu at silo-c", e.Message);
        Assert.Contains("short by 30.8 GB", e.Message);
        Assert.Contains("add silos", e.Message);
        Assert.Contains("compress the model", e.Message);
    }

    [Fact]
    public void Enough_memory_in_total_but_layers_that_do_not_pack_is_explained()
    {
        SiloCapacity[] silos = [new("a", "cuda:0", 10 * GB), new("b", "cuda:1", 10 * GB)];
        var e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Uniform(3, 6 * GB), silos, new PlanOptions { Headroom = 0 }));
        Assert.Contains("needs 18.0 GB", e.Message);
        Assert.Contains("20.0 GB usable", e.Message);
        Assert.Contains("do not pack", e.Message);
    }

    [Fact]
    public void A_better_chain_order_saves_a_stage()
    {
        // Biggest first, 'a' takes [6] and wastes 4; 'b' then cannot hold [5, 5]. 'b' first takes [6], 'a' takes [5, 5].
        var model = new ModelFootprint(0, [6, 5, 5], 0, 0);
        SiloCapacity[] silos = [new("a", "cuda:0", 10), new("b", "cuda:1", 6), new("c", "cuda:2", 5)];
        var options = new PlanOptions { Headroom = 0 };
        var plan = StagePlanner.Plan(model, silos, options);
        Valid(plan, model, silos, options);
        Assert.Equal(["b", "a"], plan.Stages.Select(s => s.SiloId));
    }

    [Fact]
    public void Headroom_and_kv_tokens_count()
    {
        SiloCapacity[] silos = [new("a", "cuda:0", 10 * GB)];
        var model = Uniform(8, GB, kvPerTokenPerLayer: 1000);
        Assert.Single(StagePlanner.Plan(model, silos, new PlanOptions { Headroom = 0.1, KvTokens = 0 }).Stages);
        Assert.Throws<PlanningException>(() => StagePlanner.Plan(model, silos, new PlanOptions { Headroom = 0.25, KvTokens = 0 }));
        Assert.Throws<PlanningException>(() => StagePlanner.Plan(model, silos, new PlanOptions { Headroom = 0.1, KvTokens = 200_000 }));
    }

    [Fact]
    public void Same_input_gives_the_same_plan_in_any_silo_order_and_ties_break_by_id()
    {
        var model = Llama70B(1_200_000_000);
        var options = new PlanOptions { KvTokens = 8192 };
        var plan = StagePlanner.Plan(model, Mixed, options);
        Assert.Equal(plan, StagePlanner.Plan(model, Mixed.Reverse().ToArray(), options));
        Assert.Equal(plan.Describe(), StagePlanner.Plan(model, Mixed, options).Describe());

        SiloCapacity[] twins = [new("twin-b", "cuda:0", 40 * GB), new("twin-a", "cuda:0", 40 * GB)];
        Assert.Equal("twin-a", Assert.Single(StagePlanner.Plan(Uniform(8, GB), twins, new PlanOptions()).Stages).SiloId);
        SiloCapacity[] faster = [new("x", "cuda:0", 40 * GB, Speed: 1), new("y", "cuda:0", 40 * GB, Speed: 2), new("z", "cpu", 8 * GB)];
        Assert.Equal("y", Assert.Single(StagePlanner.Plan(Uniform(8, GB), faster, new PlanOptions()).Stages).SiloId);
    }

    [Fact]
    public void Describe_lists_every_stage()
    {
        var plan = StagePlanner.Plan(Llama70B(1_200_000_000), Mixed, new PlanOptions { KvTokens = 8192 });
        string text = plan.Describe();
        Assert.StartsWith("3 stage(s) over 80 layer(s) on 3 silo(s): weights 98.1 GB + KV 2.7 GB", text);
        Assert.Contains("stage 0: layers 0-56 (57) on silo-a, weights 69.5 GB + KV 1.9 GB = 71.4 GB", text);
        Assert.Contains("stage 2: layers 74-79 (6) on silo-c", text);
        Assert.Equal(text, plan.ToString());
    }

    [Fact]
    public void Bad_silos_are_refused_by_name()
    {
        var model = Uniform(4, GB);
        var e = Assert.Throws<ArgumentException>(() => StagePlanner.Plan(model, [new("a", "cuda:0", 10 * GB), new("empty", "cpu", 0)], new PlanOptions()));
        Assert.Contains("'empty'", e.Message);
        e = Assert.Throws<ArgumentException>(() => StagePlanner.Plan(model, [new("a", "cuda:0", 10 * GB), new("a", "cpu", 10 * GB)], new PlanOptions()));
        Assert.Contains("'a' appears twice", e.Message);
        e = Assert.Throws<ArgumentException>(() => StagePlanner.Plan(model, [new("slow", "cuda:0", 10 * GB, Speed: -1)], new PlanOptions()));
        Assert.Contains("'slow'", e.Message);
        Assert.Throws<ArgumentException>(() => StagePlanner.Plan(model, [new("a", "cuda:0", 10 * GB)], new PlanOptions { Headroom = 1 }));
        Assert.Throws<ArgumentException>(() => StagePlanner.Plan(model, [new("a", "cuda:0", 10 * GB)], new PlanOptions { Stages = 0 }));
        Assert.Throws<ArgumentException>(() => StagePlanner.Plan(new ModelFootprint(0, [], 0, 0), [new("a", "cuda:0", 10 * GB)], new PlanOptions()));
    }

    [Fact]
    public void No_silos_is_a_planning_error()
    {
        var e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Uniform(4, GB), [], new PlanOptions()));
        Assert.StartsWith("no silos", e.Message);
    }

    [Fact]
    public void Equal_silos_balance_the_bytes_each_stage_reads_per_step_not_the_bytes_it_holds()
    {
        // 12 layers of 100 MB; a 350 MB embedding (first stage, only looked up) and a 350 MB tied head (last stage,
        // read every step). Holding-balanced would be 6/6; step-balanced puts 8 layers first (800 vs 750 MB a step).
        var model = new ModelFootprint(350_000_000, Enumerable.Repeat(100_000_000L, 12).ToArray(), 350_000_000, 1024);
        SiloCapacity[] silos = [new("silo-1", "cpu", 8 * GB), new("silo-2", "cpu", 8 * GB)];
        var plan = StagePlanner.Plan(model, silos, new PlanOptions { Stages = 2 });
        Valid(plan, model, silos, new PlanOptions { Stages = 2 });
        Assert.Equal([8, 4], plan.Stages.Select(s => s.LayerCount));
    }
}
