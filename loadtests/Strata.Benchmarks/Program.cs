using Strata.Benchmarks;

return args.FirstOrDefault() switch
{
    "decode" => DecodeBenchmark.Run(args[1..]),
    "bandwidth" => BandwidthBenchmark.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage:
          Strata.Benchmarks decode --model DIR [--stages 1,4] [--threads N] [--tokens N] [--prompt-tokens N] [--rounds N] [--json PATH]
          Strata.Benchmarks bandwidth [--threads N] [--mib N]
        """);
    return 2;
}
