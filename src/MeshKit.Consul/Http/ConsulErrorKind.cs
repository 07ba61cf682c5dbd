using System.Net;

namespace MeshKit.Consul;

/// <summary>What went wrong with a call to Consul.</summary>
public enum ConsulErrorKind
{
    /// <summary>The agent could not be reached (connection refused or reset, DNS, TLS handshake).</summary>
    Unreachable,

    /// <summary>The agent did not answer within the request timeout.</summary>
    Timeout,

    /// <summary>The agent answered with a status other than 2xx (see <see cref="ConsulException.StatusCode"/>).</summary>
    Status,

    /// <summary>The agent answered 2xx, but the body was not what the endpoint documents (malformed JSON).</summary>
    MalformedResponse,
}
