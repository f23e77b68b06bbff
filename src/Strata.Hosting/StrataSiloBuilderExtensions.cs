using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Runtime.MembershipService.SiloMetadata;
using Orleans.Serialization;
using Orleans.Storage;
using Strata.Grains;
using Strata.Grains.Placement;
using Strata.Grains.Stages;

namespace Strata.Hosting;

/// <summary>Adds Strata (stage host, shard placement, silo metadata, options) to an Orleans silo.</summary>
public static class StrataSiloBuilderExtensions
{
    /// <summary>Registers Strata with options from the <c>Strata</c> section of <paramref name="configuration"/>,
    /// then <paramref name="configure"/>. Invalid options fail at start-up with a message naming the setting.</summary>
    public static ISiloBuilder AddStrata(this ISiloBuilder silo, IConfiguration? configuration = null, Action<StrataSiloOptions>? configure = null)
    {
        var options = new StrataSiloOptions();
        configuration?.GetSection(StrataSiloOptions.Section).Bind(options);
        configure?.Invoke(options);
        StrataSiloOptionsValidator.ThrowIfInvalid(options);

        silo.Services.AddSingleton(Options.Create(options));
        silo.AddActivityPropagation(); // traces continue through grain calls (spans only while a tracer listens)
        silo.Services.AddSingleton<StageHost>();
        silo.Services.AddSingleton<TokenizerCache>();
        silo.Services.AddSingleton<StepDeadlines>();
        silo.Services.AddSingleton<Grains.Control.PeerWatch>();
        // Every silo connection that ends has its peer checked at once: a killed process resets them all. An outbound
        // one names the peer's silo endpoint; an inbound one only an ephemeral port (this silo may never have called
        // the peer), so it checks every peer (coalesced: at most one sweep every 250 ms).
        silo.Configure<SiloConnectionOptions>(o =>
        {
            o.ConfigureSiloOutboundConnection(b => OnConnectionEnd(b, (watch, context) => watch.ConnectionLost(context.RemoteEndPoint)));
            o.ConfigureSiloInboundConnection(b => OnConnectionEnd(b, (watch, _) => watch.Sweep()));
        });
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, Grains.Control.DrainOnShutdown>();
        if (options.DrainOnShutdown)
            silo.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = options.DrainTimeout + TimeSpan.FromSeconds(20));
        // Control state (deployments, sessions): Redis when the clustering registered it, else in memory (the
        // embedded cluster), kept by storage grains spread over the silos.
        if (!silo.Services.Any(d => d.IsKeyedService && Equals(d.ServiceKey, StrataStorage.Name)))
            silo.AddMemoryGrainStorage(StrataStorage.Name, b => b.Configure<Serializer>((o, serializer) =>
                o.GrainStorageSerializer = new OrleansGrainStorageSerializer(serializer)));
        silo.AddPlacementDirector<PinnedShardPlacement, PinnedShardPlacementDirector>();
        var metadata = new Dictionary<string, string>
        {
            [StrataMetadata.Device] = options.Device,
            [StrataMetadata.Memory] = options.MemoryBytes.ToString(CultureInfo.InvariantCulture),
            [StrataMetadata.Speed] = options.Speed.ToString(CultureInfo.InvariantCulture),
        };
        // Silo metadata is fixed for the life of the process, so the measurement happens here, before the silo starts.
        var calibration = new SiloCalibrationResult(options.Calibrate && options.Speed == 0 ? Calibration.SiloCalibrator.Measure(options) : null);
        if (calibration.Value is { } measured) metadata[StrataMetadata.Calibration] = measured.Format();
        silo.Services.AddSingleton(calibration);
        silo.UseSiloMetadata(metadata);
        // Activations are a few MB at most; KV never travels. Keep the default message limit, but a call to a silo
        // that died should fail in seconds, not Orleans' default 30 s: calls that may run long carry their own.
        silo.Configure<SiloMessagingOptions>(m => m.ResponseTimeout = options.CallTimeout);
        return silo;
    }

    /// <summary>Runs <paramref name="check"/> (without waiting for it) when a connection built by
    /// <paramref name="builder"/> ends, however it ends.</summary>
    private static void OnConnectionEnd(Microsoft.AspNetCore.Connections.IConnectionBuilder builder,
        Func<Grains.Control.PeerWatch, Microsoft.AspNetCore.Connections.ConnectionContext, Task> check)
    {
        var watch = builder.ApplicationServices.GetRequiredService<Grains.Control.PeerWatch>();
        builder.Use(next => async context =>
        {
            try
            {
                await next(context);
            }
            finally
            {
                _ = check(watch, context);
            }
        });
    }
}

/// <summary>What this silo measured at start-up, or null when calibration was off or overridden by a speed.</summary>
/// <param name="Value">The calibration it advertises.</param>
public sealed record SiloCalibrationResult(Models.Planning.SiloCalibration? Value);

/// <summary>Checks <see cref="StrataSiloOptions"/> at start-up.</summary>
public static class StrataSiloOptionsValidator
{
    /// <summary>Throws <see cref="OptionsValidationException"/> naming each bad setting.</summary>
    public static void ThrowIfInvalid(StrataSiloOptions o)
    {
        var errors = new List<string>();
        try { Engine.Runtime.DeviceSpec.Parse(o.Device); }
        catch (FormatException e) { errors.Add($"Strata:Device: {e.Message}"); }
        try { _ = o.MemoryBytes; }
        catch (FormatException e) { errors.Add($"Strata:Memory: {e.Message}"); }
        if (o.Threads < 0) errors.Add($"Strata:Threads must be >= 0, got {o.Threads}");
        if (o.Speed < 0) errors.Add($"Strata:Speed must be >= 0, got {o.Speed}");
        if (o.SessionKvTtl <= TimeSpan.Zero) errors.Add($"Strata:SessionKvTtl must be positive, got {o.SessionKvTtl}");
        if (o.StepTimeout <= TimeSpan.Zero) errors.Add($"Strata:StepTimeout must be positive, got {o.StepTimeout}");
        if (o.CallTimeout < TimeSpan.FromSeconds(2)) errors.Add($"Strata:CallTimeout must be at least 2 s, got {o.CallTimeout}");
        if (o.StepDeadlineFloor <= TimeSpan.Zero) errors.Add($"Strata:StepDeadlineFloor must be positive, got {o.StepDeadlineFloor}");
        if (!(o.StepDeadlineFactor >= 1) || double.IsInfinity(o.StepDeadlineFactor)) errors.Add($"Strata:StepDeadlineFactor must be at least 1, got {o.StepDeadlineFactor}");
        if (o.DrainTimeout <= TimeSpan.Zero) errors.Add($"Strata:DrainTimeout must be positive, got {o.DrainTimeout}");
        if (o.ShardProbeTimeout <= TimeSpan.Zero) errors.Add($"Strata:ShardProbeTimeout must be positive, got {o.ShardProbeTimeout}");
        if (o.StageLoadTimeout <= TimeSpan.Zero) errors.Add($"Strata:StageLoadTimeout must be positive, got {o.StageLoadTimeout}");
        if (o.ReconcileInterval < TimeSpan.FromMilliseconds(100)) errors.Add($"Strata:ReconcileInterval must be at least 100 ms, got {o.ReconcileInterval}");
        if (o.HealInterval < TimeSpan.Zero) errors.Add($"Strata:HealInterval must not be negative, got {o.HealInterval}");
        if (o.Precision is not ("" or "fp32" or "fp16")) errors.Add($"Strata:Precision must be fp32, fp16 or empty (the device's default), got '{o.Precision}'");
        if (o.MaxBatch < 1) errors.Add($"Strata:MaxBatch must be >= 1, got {o.MaxBatch}");
        if (o.PrefillChunk < 1) errors.Add($"Strata:PrefillChunk must be >= 1, got {o.PrefillChunk}");
        if (o.AdmissionQueue < 0) errors.Add($"Strata:AdmissionQueue must be >= 0, got {o.AdmissionQueue}");
        if (o.AdmissionWait < TimeSpan.Zero || o.AdmissionWait > TimeSpan.FromMinutes(5))
            errors.Add($"Strata:AdmissionWait must be between 0 and 5 minutes, got {o.AdmissionWait}");
        if (string.IsNullOrWhiteSpace(o.ModelStore)) errors.Add("Strata:ModelStore must not be empty");
        if (errors.Count > 0) throw new OptionsValidationException(StrataSiloOptions.Section, typeof(StrataSiloOptions), errors);
    }
}
