using Orleans.Concurrency;
using Strata.Contracts;

namespace Strata.Grains.Control;

/// <summary>The <see cref="PeerWatch"/> of the silo that is called (a client's gateway), for clients.</summary>
[StatelessWorker]
internal sealed class PeerWatchGrain(PeerWatch watch) : Grain, IPeerWatchGrain
{
    public Task<int> Sweep() => watch.Sweep();
}
