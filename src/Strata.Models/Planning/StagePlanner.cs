namespace Strata.Models.Planning;

/// <summary>
/// Cuts a model into contiguous stages and chooses the silo each stage runs on. A pure function: the same model,
/// silos and options give the same plan whatever order the silos come in.
/// </summary>
/// <remarks>
/// <para>Every hop between stages costs a network round trip per token, so auto mode uses the fewest stages that fit:
/// the fewest silos whose memory can hold the model, found on the biggest silos (a bigger silo never hurts).
/// Among the sets of that size that fit, it takes the most preferred silos: the fastest when every silo advertises a
/// speed, otherwise accelerators before the CPU and then the most memory (so a small model goes to the GPU, not to a
/// CPU host with more RAM). Along the chain the silos come in that order.</para>
/// <para>How layers are shared then depends on what is known. With speeds, the split minimises the slowest stage's
/// time (bytes read per step / speed), the pipeline's bottleneck. Without, memory says nothing about speed, so each
/// silo in preference order takes as many layers as fit and the least preferred devices get only what is left.</para>
/// <para>When every silo advertises a calibration (<see cref="SiloCalibration"/>), the planner instead predicts each
/// stage's step time on its silo from the stage's bytes and FLOPs at <see cref="PlanOptions.Batch"/> rows, and searches
/// the silos, their order and the split for the smallest slowest stage plus <see cref="PlanOptions.HopSeconds"/> per hop,
/// within memory: it may use more silos than fit requires (when a hop costs less than it saves), leave out a silo that
/// would slow the pipeline, and give a fast small device fewer layers than its memory holds. The plan carries the
/// prediction (<see cref="StagePlan.Prediction"/>). Several stages per silo still follow the rules below, with each
/// silo's calibrated speed.</para>
/// <para>With an exact stage count the split follows each silo's share of capacity (speed when all chosen silos
/// advertise one, usable memory otherwise), never beyond its memory. More stages than silos puts several adjacent
/// stages on one silo, their number in proportion to the same capacity.</para>
/// </remarks>
public static class StagePlanner
{
    private const int MaxSilosListed = 6;

    /// <summary>Plans the stages of <paramref name="model"/> over <paramref name="silos"/>.</summary>
    /// <exception cref="ArgumentException">A silo has no memory, a speed that is not positive, a blank or duplicate
    /// id; the model or the options are invalid.</exception>
    /// <exception cref="PlanningException">The model cannot be placed as asked; the message says why and what to change.</exception>
    public static StagePlan Plan(ModelFootprint model, IReadOnlyList<SiloCapacity> silos, PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ValidateModel(model);
        if (silos.Count == 0)
            throw new PlanningException("no silos: the cluster advertises no silo to place stages on; start a silo (or wait for silos to join) and deploy again");
        ValidateSilos(silos);

        LayerCosts costs;
        try
        {
            costs = new LayerCosts(model, options.KvTokens);
        }
        catch (OverflowException e)
        {
            throw new ArgumentException($"the model's sizes overflow 64 bits with {options.KvTokens} KV tokens", nameof(model), e);
        }

        bool measured = silos.All(s => s.Calibration is not null);
        // A calibrated silo's speed, for the rules that take one number, is its own unless --speed overrode it.
        silos = silos.Select(s => s.Speed is null && s.Calibration is { } c ? s with { Speed = c.Speed } : s).ToList();
        var ranked = Rank(silos, options);
        // Silos in id order, so the search's ties break the same way whatever order they came in. When it finds no
        // chain, the rules below find none either and say why.
        if (measured && (options.Stages is null || options.Stages <= silos.Count) &&
            MeasuredPlanner.Plan(costs, ranked.OrderBy(s => s.Silo.SiloId, StringComparer.Ordinal).ToList(), options) is { } chain)
            return Predicted(costs, new StagePlan(chain.Select((c, i) => Stage(costs, i, c.First, c.End, c.Slot)).ToList()), silos, options);
        var plan = options.Stages is int k ? Exact(costs, ranked, k, options) : Auto(costs, ranked);
        return measured ? Predicted(costs, plan, silos, options) : plan;
    }

    /// <summary>
    /// What <paramref name="plan"/>'s step should take on <paramref name="silos"/> (each stage's predicted step time
    /// at <see cref="PlanOptions.Batch"/> rows, the hops); null when a silo the plan uses advertises no calibration.
    /// </summary>
    /// <exception cref="ArgumentException">The plan does not cover the model's layers, or names a silo not in the list.</exception>
    public static PlanPrediction? Predict(ModelFootprint model, IReadOnlyList<SiloCapacity> silos, StagePlan plan, PlanOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(silos);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ValidateModel(model);
        if (plan.LayerCount != model.LayerCount)
            throw new ArgumentException($"the plan covers {plan.LayerCount} layer(s) but the model has {model.LayerCount}", nameof(plan));
        return Predicted(new LayerCosts(model, options.KvTokens), plan, silos, options).Prediction;
    }

    private static StagePlan Predicted(LayerCosts costs, StagePlan plan, IReadOnlyList<SiloCapacity> silos, PlanOptions options)
    {
        var byId = silos.ToDictionary(s => s.SiloId, StringComparer.Ordinal);
        var seconds = new double[plan.Stages.Count];
        for (int i = 0; i < seconds.Length; i++)
        {
            var s = plan.Stages[i];
            if (!byId.TryGetValue(s.SiloId, out var silo))
                throw new ArgumentException($"stage {i} is on silo '{s.SiloId}', which is not in the silo list", nameof(silos));
            if (silo.Calibration is null) return plan;
            seconds[i] = MeasuredPlanner.Seconds(new Slot(silo, 0), costs, s.FirstLayer, s.EndLayer, options.Batch);
        }
        return plan with { Prediction = new PlanPrediction(seconds, options.HopSeconds, options.Batch) };
    }

    private static PlannedStage Stage(LayerCosts costs, int index, int first, int end, Slot slot) =>
        new(index, first, end, slot.Silo.SiloId, costs.Weights(first, end), costs.Kv(first, end));

    private static StagePlan Auto(LayerCosts costs, IReadOnlyList<Slot> ranked)
    {
        var bySize = BySize(ranked);
        int count = 0;
        for (int m = 1; m <= ranked.Count && count == 0; m++)
            if (Fits(costs, InRankOrder(ranked, bySize.Take(m)))) count = m;
        if (count == 0) throw NotFit(costs, ranked, $"the cluster's {ranked.Count} silo(s) offer", "add silos");

        var order = ChainOrder.Find(costs, Choose(costs, ranked, bySize, count))!;
        var bounds = LayerSplitter.Split(costs, 0, costs.Layers, order, AllSpeeds(order) ? BySpeed(costs, order) : null)!;
        return Build(costs, order, bounds);
    }

    private static StagePlan Exact(LayerCosts costs, IReadOnlyList<Slot> ranked, int stages, PlanOptions options)
    {
        if (stages > costs.Layers)
            throw new PlanningException($"{stages} stages asked but the model has only {costs.Layers} layer(s) and every stage needs at least one; ask for at most {costs.Layers} stages, or none for auto");

        IReadOnlyList<Slot> order;
        if (stages <= ranked.Count)
        {
            var biggest = InRankOrder(ranked, BySize(ranked).Take(stages));
            if (!Fits(costs, biggest))
                throw NotFit(costs, biggest, $"the {stages} biggest silo(s), one per stage, offer", "ask for more stages (or none, for auto), add silos");
            order = ChainOrder.Find(costs, Choose(costs, ranked, BySize(ranked), stages))!;
        }
        else
        {
            if (!options.AllowSeveralStagesPerSilo)
                throw new PlanningException($"{stages} stages asked but the cluster has only {ranked.Count} silo(s) and several stages per silo are not allowed; ask for at most {ranked.Count} stages, or allow several stages per silo");
            order = ChainOrder.Find(costs, Apportion(ranked, stages))
                    ?? throw NotFit(costs, ranked, $"the cluster's {ranked.Count} silo(s), holding {stages} stages, offer", "ask for fewer stages (or none, for auto), add silos");
        }

        // The split balances the bytes each stage reads per step (the pipeline's bottleneck under load), in proportion
        // to the silos' advertised speeds, or to their memory when not all advertise one. Balancing memory instead
        // would count the embedding, which the first stage holds but only looks rows up in.
        var share = BySpeed(costs, order);
        var bounds = LayerSplitter.Split(costs, 0, costs.Layers, order, share)
                     ?? throw NotFit(costs, order, $"the {order.Count} chosen silo(s), holding {stages} stages, offer", "ask for fewer stages (or none, for auto), add silos");
        return Build(costs, order, bounds);
    }

    // The most preferred set of `count` silos that fits. A set fits if any set of that size containing it does, when
    // completed with the biggest remaining silos; so taking each preferred silo that keeps the set completable works.
    private static List<Slot> Choose(LayerCosts costs, IReadOnlyList<Slot> ranked, IReadOnlyList<Slot> bySize, int count)
    {
        if (count == ranked.Count) return ranked.ToList();
        var chosen = new List<Slot>(count);
        foreach (var candidate in ranked)
        {
            if (chosen.Count == count) break;
            var trial = chosen.Append(candidate).ToList();
            trial.AddRange(bySize.Where(s => !trial.Contains(s)).Take(count - trial.Count));
            if (Fits(costs, InRankOrder(ranked, trial))) chosen.Add(candidate);
        }
        return InRankOrder(ranked, chosen);
    }

    // Several stages per silo: every silo gets one, and each further stage goes to the silo whose stages are largest
    // for its capacity (highest averages), so stage sizes even out.
    private static List<Slot> Apportion(IReadOnlyList<Slot> ranked, int stages)
    {
        var weights = Weights(ranked);
        var counts = new int[ranked.Count];
        Array.Fill(counts, 1);
        for (int extra = stages - ranked.Count; extra > 0; extra--)
        {
            int best = 0;
            for (int i = 1; i < counts.Length; i++)
                if (weights[i] / counts[i] > weights[best] / counts[best]) best = i;
            counts[best]++;
        }
        return ranked.Select((s, i) => s with { Stages = counts[i] }).ToList();
    }

    private static StagePlan Build(LayerCosts costs, IReadOnlyList<Slot> order, int[] bounds)
    {
        var stages = new List<PlannedStage>();
        for (int g = 0; g < order.Count; g++)
        {
            var slot = order[g];
            int[] cuts = [bounds[g], bounds[g + 1]];
            if (slot.Stages > 1)
            {
                // The silo's stages share its memory, which already holds their union; even out the bytes each reads per step.
                var parts = Enumerable.Repeat(new Slot(slot.Silo, long.MaxValue), slot.Stages).ToList();
                cuts = LayerSplitter.Split(costs, bounds[g], bounds[g + 1], parts, new Balance(costs.StepBytes, parts.Select(_ => 1.0).ToArray()))!;
            }
            for (int i = 0; i + 1 < cuts.Length; i++)
                stages.Add(Stage(costs, stages.Count, cuts[i], cuts[i + 1], slot));
        }
        return new StagePlan(stages);
    }

    private static bool Fits(LayerCosts costs, IReadOnlyList<Slot> slots) =>
        slots.Sum(s => (decimal)s.Usable) >= costs.Need(0, costs.Layers) && ChainOrder.Find(costs, slots) is not null;

    private static bool AllSpeeds(IEnumerable<Slot> slots) => slots.All(s => s.Silo.Speed is not null);

    private static double[] Weights(IReadOnlyList<Slot> slots) => AllSpeeds(slots)
        ? slots.Select(s => s.Silo.Speed!.Value).ToArray()
        : slots.Select(s => (double)Math.Max(1, s.Usable)).ToArray();

    private static Balance BySpeed(LayerCosts costs, IReadOnlyList<Slot> slots) => new(costs.StepBytes, Weights(slots));



    // Preference: fastest first when all silos advertise a speed; otherwise accelerators, then memory, then speed.
    private static List<Slot> Rank(IReadOnlyList<SiloCapacity> silos, PlanOptions options)
    {
        bool speeds = silos.All(s => s.Speed is not null);
        return silos
            .Select(s => new Slot(s, options.Usable(s.MemoryBytes)))
            .OrderByDescending(s => speeds ? s.Silo.Speed!.Value : 0)
            .ThenBy(s => speeds ? 0 : s.Silo.IsCpu ? 1 : 0)
            .ThenByDescending(s => s.Usable)
            .ThenByDescending(s => s.Silo.Speed ?? double.NegativeInfinity)
            .ThenBy(s => s.Silo.SiloId, StringComparer.Ordinal)
            .ToList();
    }

    private static List<Slot> BySize(IReadOnlyList<Slot> ranked) =>
        ranked.Select((s, i) => (s, i)).OrderByDescending(x => x.s.Usable).ThenBy(x => x.i).Select(x => x.s).ToList();

    private static List<Slot> InRankOrder(IReadOnlyList<Slot> ranked, IEnumerable<Slot> subset)
    {
        var set = subset.Select(s => s.Silo.SiloId).ToHashSet(StringComparer.Ordinal);
        return ranked.Where(s => set.Contains(s.Silo.SiloId)).ToList();
    }

    private static PlanningException NotFit(LayerCosts costs, IReadOnlyList<Slot> offered, string offeredWhat, string firstAdvice)
    {
        long need = costs.Need(0, costs.Layers), weights = costs.Weights(0, costs.Layers), kv = costs.Kv(0, costs.Layers);
        decimal usable = offered.Sum(s => (decimal)s.Usable);
        string listed = string.Join(", ", offered.Take(MaxSilosListed).Select(s => $"{s.Silo} ({ByteSize.Format(s.Usable)} usable)"))
                        + (offered.Count > MaxSilosListed ? $", and {offered.Count - MaxSilosListed} more" : "");
        string problem = usable < need
            ? $"short by {ByteSize.Format(need - (long)usable)}"
            : $"enough in total, but whole layers do not pack into them (a layer with its KV needs up to {ByteSize.Format(costs.LargestLayerNeed)}; the first stage also holds the embedding, {ByteSize.Format(costs.EmbeddingBytes)}, and the last the head, {ByteSize.Format(costs.HeadBytes)})";
        return new PlanningException(
            $"the model needs {ByteSize.Format(need)} (weights {ByteSize.Format(weights)} + KV {ByteSize.Format(kv)} for {costs.KvTokens} tokens) " +
            $"but {offeredWhat} {ByteSize.Format((long)usable)} usable: {listed}; {problem}. " +
            $"To fix: {firstAdvice}, raise the silos' memory budget, lower the max context or concurrent sessions, or compress the model (int8/int4).");
    }

    private static void ValidateModel(ModelFootprint model)
    {
        if (model.LayerBytes is null || model.LayerBytes.Count == 0)
            throw new ArgumentException("the model footprint has no layers", nameof(model));
        for (int i = 0; i < model.LayerBytes.Count; i++)
            if (model.LayerBytes[i] < 0) throw new ArgumentException($"layer {i} of the model footprint has {model.LayerBytes[i]} bytes", nameof(model));
        if (model.EmbeddingBytes < 0 || model.HeadBytes < 0 || model.KvBytesPerTokenPerLayer < 0)
            throw new ArgumentException("the model footprint's embedding, head and KV sizes must not be negative", nameof(model));
        if (model.LayerFlopsPerToken is { } flops && (flops.Count != model.LayerBytes.Count || flops.Any(f => f < 0)))
            throw new ArgumentException($"the model footprint gives FLOPs for {flops.Count} layer(s) of {model.LayerBytes.Count}; give one non-negative count per layer, or none", nameof(model));
        if (model.HeadFlopsPerToken < 0)
            throw new ArgumentException("the model footprint's head FLOPs must not be negative", nameof(model));
    }

    private static void ValidateSilos(IReadOnlyList<SiloCapacity> silos)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in silos)
        {
            if (s is null) throw new ArgumentException("the silo list holds a null entry", nameof(silos));
            if (string.IsNullOrWhiteSpace(s.SiloId)) throw new ArgumentException($"a silo ({s.Device}) has a blank id", nameof(silos));
            if (s.MemoryBytes <= 0)
                throw new ArgumentException($"silo '{s.SiloId}' advertises {s.MemoryBytes} bytes of memory; it must be positive", nameof(silos));
            if (s.Speed is double v && !(v > 0 && double.IsFinite(v)))
                throw new ArgumentException($"silo '{s.SiloId}' advertises speed {v}; it must be positive and finite, or null when unknown", nameof(silos));
            s.Calibration?.Validate(s.SiloId);
            if (!seen.Add(s.SiloId)) throw new ArgumentException($"silo '{s.SiloId}' appears twice in the silo list", nameof(silos));
        }
    }
}
