using Strata.Benchmarks;

return args.FirstOrDefault() switch
{
    "decode" => DecodeBenchmark.Run(args[1..]),
    "bandwidth" => BandwidthBenchmark.Run(args[1..]),
    "cluster" => ClusterBenchmark.Run(args[1..]),
    "batch" => BatchBenchmark.Run(args[1..]),
    "kv" => KvBenchmark.Run(args[1..]),
    "overhead" => OverheadBenchmark.Run(args[1..]),
    "hops" => HopBenchmark.Run(args[1..]),
    "llama-peer" => LlamaPeerBenchmark.Run(args[1..]),
    "quant" => QuantBenchmark.Run(args[1..]),
    "planner" => PlannerBenchmark.Run(args[1..]),
    "load-memory" => QuantBenchmark.RunLoadMemory(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage:
          Strata.Benchmarks decode --model DIR [--stages 1,4] [--threads N] [--tokens N] [--prompt-tokens N] [--rounds N] [--json PATH]
          Strata.Benchmarks batch --model DIR [--batches 1,16] [--threads N] [--steps N] [--prompt-tokens N] [--rounds N] [--json PATH]
          Strata.Benchmarks kv --model DIR [--batches 1,16] [--threads N] [--steps N] [--prompt-tokens N] [--rounds N] [--context N] [--budget-gb G] [--json PATH]
          Strata.Benchmarks quant --model HF-DIR [--batches 1,16] [--threads N] [--block 32] [--accuracy-level 4] [--steps N] [--rounds N] [--work DIR] [--json PATH]
          Strata.Benchmarks load-memory --package DIR [--threads N] [--max-context N] [--accuracy-level N]
          Strata.Benchmarks bandwidth [--threads N] [--mib N]
          Strata.Benchmarks overhead --store DIR --package NAME --silo PATH/strata-silo.dll [--silos 2] [--stages 2] [--tokens 64] [--rounds 3] [--concurrency 1,16] [--json PATH]
          Strata.Benchmarks llama-peer --model HF-DIR [--agree HF-DIR] [--types f32,q8_0,q4_0] [--batches 1,16] [--threads N] [--steps N] [--rounds N] [--json PATH]
          Strata.Benchmarks hops --store DIR --package NAME --silo PATH/strata-silo.dll [--stages 2] [--requests 4] [--tokens 96] [--json PATH]
          Strata.Benchmarks planner --store DIR --package NAME --silo PATH/strata-silo.dll [--deployments 1,1/1,2/2,1] [--steps 48] [--rounds 3] [--json PATH]
          Strata.Benchmarks cluster --store DIR --package NAME --silo PATH/strata-silo.dll [--silos 2] [--stages 4] [--tokens 32] [--rounds 5] [--json PATH]
        """);
    return 2;
}
