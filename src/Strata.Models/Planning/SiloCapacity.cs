namespace Strata.Models.Planning;

/// <summary>What one silo offers the planner: one device and a memory budget for weights plus KV cache.</summary>
/// <param name="SiloId">The silo's identity (unique in the cluster); ties between otherwise equal silos break on it, ordinally.</param>
/// <param name="Device">The device stages run on: <c>cpu</c>, <c>cuda:0</c>, ...</param>
/// <param name="MemoryBytes">Memory the silo may fill with weights and KV cache, before headroom.</param>
/// <param name="Speed">Relative throughput (measured tokens/s, memory bandwidth, ...; only ratios between silos matter),
/// or null when unknown. Used only when every silo in question advertises one and not every silo a calibration.</param>
/// <param name="Calibration">What the silo measured at start-up, or null when it did not. When every silo has one,
/// the planner predicts step times from them and minimises the pipeline's.</param>
public sealed record SiloCapacity(string SiloId, string Device, long MemoryBytes, double? Speed = null, SiloCalibration? Calibration = null)
{
    /// <summary>Whether the device is the host CPU (anything else counts as an accelerator).</summary>
    public bool IsCpu => string.Equals(Device, "cpu", StringComparison.OrdinalIgnoreCase);

    /// <summary>One line for messages: <c>80.0 GB cuda:0 at silo-a</c>.</summary>
    public override string ToString() => $"{ByteSize.Format(MemoryBytes)} {Device} at {SiloId}";
}
