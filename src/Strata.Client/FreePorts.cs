using System.Net;
using System.Net.Sockets;

namespace Strata.Client;

/// <summary>Ports nothing listens on right now, chosen by the operating system: for tools and tests that start a
/// local cluster (silo, gateway and metrics ports).</summary>
public static class FreePorts
{
    /// <summary>Returns <paramref name="count"/> distinct free loopback ports. All listeners are held until every port is
    /// chosen, so the ports differ from each other; another process could still take one before it is used.</summary>
    public static int[] Take(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                listeners.Add(l);
            }
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var l in listeners) l.Stop();
        }
    }
}
