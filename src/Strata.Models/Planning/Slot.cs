namespace Strata.Models.Planning;

/// <summary>A silo taking part in a plan, with the memory stages may use there and how many stages it runs.</summary>
/// <param name="Silo">The silo.</param>
/// <param name="Usable">Memory its stages may use together (after headroom).</param>
/// <param name="Stages">Stages it runs; they are adjacent in the chain, so together they hold one contiguous range.</param>
internal readonly record struct Slot(SiloCapacity Silo, long Usable, int Stages = 1);

/// <summary>How a split spreads layers when there is a choice: by the load each slot carries per unit of weight.</summary>
/// <param name="Load">The load of a range [first, end): bytes read per step (for speed) or memory needed (for capacity).</param>
/// <param name="Weights">Each slot's relative capacity for load (its speed or its usable memory), positive.</param>
internal sealed record Balance(Func<int, int, long> Load, IReadOnlyList<double> Weights);
