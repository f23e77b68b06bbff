namespace Strata.LoadTest;

internal static class Program
{
    public static Task<int> Main(string[] args) =>
        LoadTestApp.RunAsync(args, Console.Out, Console.Error, redrawProgress: !Console.IsErrorRedirected);
}
