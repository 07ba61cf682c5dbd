using System.Globalization;

namespace MeshKit.LoadHarness;

/// <summary>
/// The sidecar pair: an outbound haproxy next to the caller (plain HTTP in, mTLS out) and an inbound haproxy next to the
/// upstream (mTLS in, plain HTTP out), as Istio's and Linkerd's proxies sit on each side. HTTP/1.1 with keep-alive on
/// every hop and connection reuse between the two proxies; no logging; haproxy's default thread count (one per core).
/// </summary>
internal static class Haproxy
{
    private const string Common = """
        global
            maxconn 4096

        defaults
            mode http
            option http-keep-alive
            http-reuse always
            timeout connect 5s
            timeout client 60s
            timeout server 60s
            timeout http-keep-alive 60s

        """;

    public static string WriteOutbound(string work, int listenPort, int inboundPort, BenchCertificates certs) =>
        Write(work, "haproxy-outbound.cfg", Common + string.Create(CultureInfo.InvariantCulture, $"""
            frontend from_caller
                bind 127.0.0.1:{listenPort}
                default_backend to_inbound_sidecar

            backend to_inbound_sidecar
                server inbound 127.0.0.1:{inboundPort} ssl crt {certs.ClientBundlePath} ca-file {certs.CaPath} verify required verifyhost localhost

            """));

    public static string WriteInbound(string work, int listenPort, int upstreamPort, BenchCertificates certs) =>
        Write(work, "haproxy-inbound.cfg", Common + string.Create(CultureInfo.InvariantCulture, $"""
            frontend from_outbound_sidecar
                bind 127.0.0.1:{listenPort} ssl crt {certs.ServerBundlePath} ca-file {certs.CaPath} verify required
                default_backend to_upstream

            backend to_upstream
                server upstream 127.0.0.1:{upstreamPort}

            """));

    private static string Write(string work, string name, string text)
    {
        var path = Path.Combine(work, name);
        File.WriteAllText(path, text);
        return path;
    }
}
