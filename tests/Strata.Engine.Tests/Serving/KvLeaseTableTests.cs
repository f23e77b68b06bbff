using Strata.Engine.Serving;

namespace Strata.Engine.Tests.Serving;

public sealed class KvLeaseTableTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Slots_go_lowest_first_and_a_second_reserve_keeps_the_same_lease()
    {
        var table = new KvLeaseTable(3);
        var a = await table.ReserveAsync("a");
        var b = await table.ReserveAsync("b");
        Assert.Equal((0, false), (a.Lease.Slot, a.Kept));
        Assert.Equal(1, b.Lease.Slot);
        table.Release("a");
        Assert.Equal(0, (await table.ReserveAsync("c")).Lease.Slot);
        var again = await table.ReserveAsync("b");
        Assert.True(again.Kept);
        Assert.Same(b.Lease, again.Lease);
        Assert.Equal(2, table.Used);
    }

    [Fact]
    public async Task A_slot_held_for_a_newer_turn_refuses_an_older_reservation_and_an_older_release()
    {
        // Two activations of one session (after a silo was lost): the newer one's turn wins the slot.
        var table = new KvLeaseTable(2);
        var older = await table.ReserveAsync("s", epoch: 5);
        var newer = await table.ReserveAsync("s", epoch: 9);
        Assert.True(newer.Kept);
        Assert.Equal(9, newer.Lease.Epoch);
        await Assert.ThrowsAsync<KvSupersededException>(() => table.ReserveAsync("s", epoch: 5));
        Assert.False(table.Release("s", epoch: 5));
        Assert.True(table.TryGet("s", out var held));
        Assert.Same(older.Lease, held);
        Assert.Equal(9, held.Epoch);
        Assert.True(table.Release("s", epoch: 9));
        Assert.False(table.TryGet("s", out _));
    }

    [Fact]
    public async Task When_full_sessions_wait_in_order_and_get_slots_as_they_are_released()
    {
        var table = new KvLeaseTable(1, new AdmissionOptions { QueueLimit = 4, MaxWait = Long });
        await table.ReserveAsync("a");
        var b = table.ReserveAsync("b");
        var c = table.ReserveAsync("c");
        Assert.Equal(2, table.Waiting);
        Assert.False(b.IsCompleted);
        table.Release("a");
        Assert.Equal("b", (await b.WaitAsync(Long)).Lease.SessionId);
        Assert.False(c.IsCompleted);
        table.Release("b");
        Assert.Equal("c", (await c.WaitAsync(Long)).Lease.SessionId);
        Assert.Equal(0, table.Waiting);
        Assert.Equal(3, table.Admitted);
    }

    [Fact]
    public async Task Past_the_queue_limit_or_the_wait_a_session_is_refused_with_the_reason()
    {
        var table = new KvLeaseTable(1, new AdmissionOptions { QueueLimit = 1, MaxWait = TimeSpan.FromMilliseconds(200) });
        await table.ReserveAsync("a");
        var waiting = table.ReserveAsync("b");
        var full = await Assert.ThrowsAsync<KvAdmissionException>(() => table.ReserveAsync("c"));
        Assert.Contains("queue limit 1", full.Message);
        var late = await Assert.ThrowsAsync<KvAdmissionException>(() => waiting);
        Assert.Contains("within 0.2 s", late.Message);
        Assert.Equal(0, table.Waiting);
        Assert.Equal(2, table.Rejected);

        var none = new KvLeaseTable(1, new AdmissionOptions { QueueLimit = 0 });
        await none.ReserveAsync("a");
        Assert.Contains("queues no sessions", (await Assert.ThrowsAsync<KvAdmissionException>(() => none.ReserveAsync("b"))).Message);
    }

    [Fact]
    public async Task A_waiter_that_gives_up_leaves_the_queue_and_takes_no_slot()
    {
        var table = new KvLeaseTable(1, new AdmissionOptions { MaxWait = Long });
        await table.ReserveAsync("a");
        using var cts = new CancellationTokenSource();
        var b = table.ReserveAsync("b", 0, cts.Token);
        var c = table.ReserveAsync("c");
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b);
        table.Release("a");
        Assert.Equal(0, (await c.WaitAsync(Long)).Lease.Slot);
        Assert.False(table.TryGet("b", out _));
    }

    [Fact]
    public async Task A_parked_session_keeps_its_cache_until_a_new_session_needs_the_slot()
    {
        var table = new KvLeaseTable(2, new AdmissionOptions { MaxWait = Long });
        await table.ReserveAsync("a");
        await table.ReserveAsync("b");
        table.Park("a");
        Assert.True((await table.ReserveAsync("a")).Kept); // back for its next turn: cache kept

        table.Park("a");
        table.Park("b");
        var c = await table.ReserveAsync("c"); // takes the least recently parked slot at once
        Assert.Equal((0, false), (c.Lease.Slot, c.Kept));
        Assert.False(table.TryGet("a", out _));
        Assert.True(table.TryGet("b", out _));
        var d = await table.ReserveAsync("d");
        Assert.Equal(1, d.Lease.Slot);
        Assert.Equal(2, table.Evicted);

        var a = table.ReserveAsync("a"); // its cache is gone and both slots run: it waits
        Assert.Equal(1, table.Waiting);
        table.Park("c");                 // c's turn ends: the waiter takes its slot
        var granted = await a.WaitAsync(Long);
        Assert.Equal((0, false), (granted.Lease.Slot, granted.Kept));
        Assert.False(table.TryGet("c", out _));
    }

    [Fact]
    public async Task Releasing_a_waiting_session_takes_it_out_of_the_queue_and_closing_fails_every_waiter()
    {
        var table = new KvLeaseTable(1, new AdmissionOptions { MaxWait = Long });
        await table.ReserveAsync("a");
        var b = table.ReserveAsync("b");
        var c = table.ReserveAsync("c");
        Assert.True(table.Release("b"));
        Assert.Contains("released while it waited", (await Assert.ThrowsAsync<KvAdmissionException>(() => b)).Message);
        table.Release("a");
        Assert.Equal("c", (await c.WaitAsync(Long)).Lease.SessionId);
        Assert.False(table.TryGet("b", out _));

        var d = table.ReserveAsync("d");
        table.Close();
        Assert.Contains("unloading", (await Assert.ThrowsAsync<KvAdmissionException>(() => d)).Message);
        Assert.Contains("unloading", (await Assert.ThrowsAsync<KvAdmissionException>(() => table.ReserveAsync("e"))).Message);
    }

    [Fact]
    public async Task Idle_expiry_frees_only_leases_unused_past_the_ttl_and_a_reserve_counts_as_use()
    {
        var table = new KvLeaseTable(2);
        await table.ReserveAsync("old");
        await table.ReserveAsync("new");
        var later = DateTime.UtcNow.AddMinutes(10);
        Assert.Equal(0, table.ExpireIdle(TimeSpan.FromMinutes(20), later));
        Assert.Equal(2, table.ExpireIdle(TimeSpan.FromMinutes(5), later));
        Assert.Equal(0, table.Used);
    }
}
