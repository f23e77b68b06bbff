namespace Strata.Client;

/// <summary>
/// Counts the client's gateway connections that ended. A silo that is killed resets its clients' connections at
/// once, long before any call to it times out: a stream whose pull went through that gateway will never get its
/// answer (the client's response timeout would end it seconds later), and a stream whose session lived there has
/// nothing left to pull. Each loss tells every stream to check its session now instead of after its quiet time.
/// </summary>
internal sealed class GatewayLosses
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _count;

    /// <summary>Connections lost so far.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>Completes at the next loss.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    /// <summary>A gateway connection ended.</summary>
    public void Lost()
    {
        Interlocked.Increment(ref _count);
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }
}
