using Strata.Models.Planning;
using static Strata.Models.Tests.Planning.PlanAssert;

namespace Strata.Models.Tests.Planning;

public class StageCountTests
{
    private static readonly SiloCapacity[] Two = [new("a", "cuda:0", 80 * GB), new("b", "cuda:1", 40 * GB)];
    private static readonly ModelFootprint Model = Uniform(32, GB, embedding: GB / 2, head: GB / 2, kvPerTokenPerLayer: 4096);

    private static StagePlan Plan(int? stages, IReadOnlyList<SiloCapacity>? silos = null, ModelFootprint? model = null, bool several = true)
    {
        var options = new PlanOptions { Stages = stages, AllowSeveralStagesPerSilo = several };
        var plan = StagePlanner.Plan(model ?? Model, silos ?? Two, options);
        Valid(plan, model ?? Model, silos ?? Two, options);
        if (stages is int k) Assert.Equal(k, plan.Stages.Count);
        return plan;
    }

    [Fact]
    public void One_stage_goes_on_the_biggest_silo()
    {
        Assert.Equal("a", Assert.Single(Plan(1).Stages).SiloId);
    }

    [Fact]
    public void Two_stages_split_in_proportion_to_usable_memory()
    {
        var plan = Plan(2);
        Assert.Equal(["a", "b"], plan.Stages.Select(s => s.SiloId));
        // 72 GB : 36 GB usable -> two thirds of the ~33 GB model on 'a'.
        Assert.InRange(plan.Stages[0].LayerCount, 20, 22);
    }

    [Fact]
    public void Four_stages_on_two_equal_silos_put_two_on_each()
    {
        SiloCapacity[] equal = [new("a", "cuda:0", 40 * GB), new("b", "cuda:1", 40 * GB)];
        var plan = Plan(4, equal);
        Assert.Equal(["a", "a", "b", "b"], plan.Stages.Select(s => s.SiloId));
        Assert.All(plan.Stages, s => Assert.InRange(s.LayerCount, 7, 9));
    }

    [Fact]
    public void Four_stages_on_unequal_silos_follow_their_capacity()
    {
        var plan = Plan(4);
        Assert.Equal(["a", "a", "a", "b"], plan.Stages.Select(s => s.SiloId));
    }

    [Fact]
    public void As_many_stages_as_layers_gives_one_layer_each()
    {
        var model = Uniform(8, GB);
        var plan = Plan(8, model: model);
        Assert.All(plan.Stages, s => Assert.Equal(1, s.LayerCount));
    }

    [Fact]
    public void More_stages_than_layers_is_refused()
    {
        var e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Uniform(8, GB), Two, new PlanOptions { Stages = 9 }));
        Assert.Contains("9 stages asked but the model has only 8 layer(s)", e.Message);
    }

    [Fact]
    public void Stages_that_do_not_fit_name_the_shortfall()
    {
        var big = Uniform(75, GB); // 75 GB: only two silos hold it
        Assert.Equal(2, Plan(null, model: big).Stages.Count);
        var e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Uniform(90, GB), Two, new PlanOptions { Stages = 1 }));
        Assert.Contains("the 1 biggest silo(s), one per stage, offer 72.0 GB usable", e.Message);
        Assert.Contains("short by 18.0 GB", e.Message);
        Assert.Contains("ask for more stages", e.Message);
        e = Assert.Throws<PlanningException>(() => StagePlanner.Plan(Uniform(120, GB), Two, new PlanOptions { Stages = 6 }));
        Assert.Contains("short by 12.0 GB", e.Message);
        Assert.Contains("the cluster's 2 silo(s), holding 6 stages, offer 108.0 GB usable", e.Message);
    }

    [Fact]
    public void Several_stages_per_silo_can_be_forbidden()
    {
        var e = Assert.Throws<PlanningException>(() => Plan(3, several: false));
        Assert.Contains("only 2 silo(s)", e.Message);
        Assert.Equal(2, Plan(2, several: false).Stages.Count);
    }

    [Fact]
    public void Faster_silo_gets_layers_in_proportion_to_its_speed()
    {
        SiloCapacity[] silos = [new("slow", "cuda:1", 80 * GB, Speed: 1), new("fast", "cuda:0", 80 * GB, Speed: 3)];
        var plan = Plan(2, silos, Uniform(80, GB / 2, embedding: GB / 2, head: GB / 2));
        Assert.Equal("fast", plan.Stages[0].SiloId);
        Assert.InRange(plan.Stages[0].LayerCount, 58, 61); // ~3/4 of 80
    }

    [Fact]
    public void Auto_with_speeds_balances_but_never_beyond_memory()
    {
        SiloCapacity[] silos = [new("slow", "cuda:1", 80 * GB, Speed: 1), new("fast", "cuda:0", 80 * GB, Speed: 3)];
        var model = Uniform(100, GB); // 3/4 would be 75 GB, over the fast silo's 72 GB
        var plan = Plan(null, silos, model);
        Assert.Equal(["fast", "slow"], plan.Stages.Select(s => s.SiloId));
        Assert.Equal(72, plan.Stages[0].LayerCount);
    }
}
