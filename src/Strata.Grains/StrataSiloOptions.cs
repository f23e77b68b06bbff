using Strata.Models.Planning;

namespace Strata.Grains;

/// <summary>What a silo offers Strata: its device, its memory budget, where models live. Bound from the
/// <c>Strata</c> configuration section.</summary>
public sealed class StrataSiloOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "Strata";

    /// <summary>Device for this silo's stages: cpu, cuda or cuda:N. Default cpu.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Budget for weights plus KV on the device, e.g. "8GB" or "512MB". Default: 4GB.</summary>
    public string Memory { get; set; } = "4GB";

    /// <summary>Folder that relative package paths resolve against. Default: ./models.</summary>
    public string ModelStore { get; set; } = "models";

    /// <summary>ONNX Runtime threads for this process's stages (0 = one per core).</summary>
    public int Threads { get; set; }

    /// <summary>Relative speed advertised to the planner instead of a calibration, in the unit calibration advertises
    /// (reference layer steps per second at batch 1); 0 = none. Set, it overrides the calibration (which is then skipped).</summary>
    public double Speed { get; set; }

    /// <summary>Idle time after which a session's KV is released (its history is kept). Default 5 minutes.</summary>
    public TimeSpan SessionKvTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The deadline of a session's steps before any step time was measured on its silo. Default 30 s.</summary>
    public TimeSpan StepTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Orleans' response timeout for grain calls that set none of their own. Short, because a call to a silo
    /// that died waits this long before it fails; long operations (steps, loads, repairs, admission) carry their own.
    /// A stream's heartbeat comes every half of it. Default 6 s.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>A step that takes longer than this floor plus <see cref="StepDeadlineFactor"/> times the measured
    /// step time counts as a lost stage: the session re-routes and replays. Default 1 s.</summary>
    public TimeSpan StepDeadlineFloor { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many measured step times a step may take (over the floor) before it counts as lost. Default 8.</summary>
    public double StepDeadlineFactor { get; set; } = 8;

    /// <summary>How long the model grain waits for a shard's status before calling it unreachable. Default 1 s.</summary>
    public TimeSpan ShardProbeTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether a peer that refuses connections at its silo port, once a call to it failed, is declared dead at
    /// once (its process is gone) instead of after the membership's missed probes. Default true.</summary>
    public bool ConfirmDeadPeers { get; set; } = true;

    /// <summary>How long the peer check waits for a TCP connection to a peer's silo port (or its own) before it
    /// leaves the peer to the membership's probes. Default 1 s.</summary>
    public TimeSpan PeerConnectTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Whether a session that moves off a shard still serving (a drain, a scale-down) copies its KV to the
    /// replacement instead of replaying its history there. Default true; a copy that fails falls back to replay.</summary>
    public bool CopyKvOnMove { get; set; } = true;

    /// <summary>How often a model grain checks its deployment is whole: shards on silos declared dead are re-placed,
    /// and replicas lost when no silo had room come back once one has. Zero turns it off. Default 5 s.</summary>
    public TimeSpan HealInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a repair waits for replacement stages to load. Default 5 minutes.</summary>
    public TimeSpan StageLoadTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the silo asks the model grains whether its stages are still part of their deployment
    /// (stages that are not are unloaded and their memory returned). Default 30 s.</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether a graceful stop (SIGTERM) first drains the silo: its stages move to other silos and their
    /// sessions replay there. Default true.</summary>
    public bool DrainOnShutdown { get; set; } = true;

    /// <summary>How long a drain on shutdown may take; the host's shutdown timeout is this plus 20 s. Default 2 minutes.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Element type of this silo's stages: fp32 or fp16; empty = the device's default (fp16 on CUDA, fp32
    /// on the CPU). Activations convert at the receiving stage, so stages of different types can form one chain.</summary>
    public string Precision { get; set; } = "";

    /// <summary>Most decode steps a stage runs as one batch. Default 64.</summary>
    public int MaxBatch { get; set; } = 64;

    /// <summary>Whether the stages of a pipeline compute at the same time: a stage runs decode steps in micro-batches
    /// (its share of the sessions it holds: sessions / stages), and a session sends a long prompt as several chunks at
    /// once (twice as many as stages, at least 64 tokens each). Default true; false runs every waiting decode step in
    /// one batch and a prompt one PrefillChunk step after another (for comparison).</summary>
    public bool Pipelining { get; set; } = true;

    /// <summary>Whether the outputs of one decode run that go to the same next shard travel as one message
    /// (<c>StepBatch</c>) instead of one per session. Default true; false sends each step alone (for comparison).</summary>
    public bool HopBatching { get; set; } = true;

    /// <summary>Prompt tokens per prefill run, per turn of a stage's batch loop, and per step a session sends (a longer
    /// prompt goes in several steps, which keeps activation messages small). Default 512.</summary>
    public int PrefillChunk { get; set; } = 512;

    /// <summary>Sessions that may wait for a KV slot at each stage once all are taken; more are refused at once
    /// (overloaded). A deployment can set its own. Default 256.</summary>
    public int AdmissionQueue { get; set; } = 256;

    /// <summary>How long a session waits for a KV slot before it is refused (overloaded). At most 5 minutes. A
    /// deployment can set its own. Default 60 s.</summary>
    public TimeSpan AdmissionWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Whether the silo measures its device at start-up (read bandwidth, a reference layer's step time at batch
    /// 1 and 16; well under 2 s) and advertises the result to the planner. Skipped when <see cref="Speed"/> is set.
    /// Default true.</summary>
    public bool Calibrate { get; set; } = true;

    /// <summary>The memory budget in bytes.</summary>
    public long MemoryBytes => ByteSize.Parse(Memory, nameof(Memory));
}

/// <summary>Keys of the silo metadata Strata advertises.</summary>
public static class StrataMetadata
{
    /// <summary>Device of the silo (cpu, cuda:0).</summary>
    public const string Device = "strata.device";
    /// <summary>Memory budget in bytes.</summary>
    public const string Memory = "strata.memory";
    /// <summary>Relative speed (0 = unknown).</summary>
    public const string Speed = "strata.speed";
    /// <summary>What the silo measured at start-up (<see cref="Models.Planning.SiloCalibration.Format"/>); absent when it did not.</summary>
    public const string Calibration = "strata.calibration";
}
