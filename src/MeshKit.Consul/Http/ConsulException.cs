using System.Net;

namespace MeshKit.Consul;

/// <summary>
/// A call to Consul failed. The message names the endpoint and, for an answer, the HTTP status and Consul's reason;
/// it never contains the ACL token.
/// </summary>
public sealed class ConsulException : Exception
{
    /// <summary>Initializes a new instance with a message only.</summary>
    /// <param name="message">What went wrong.</param>
    public ConsulException(string message)
        : this(message, innerException: null)
    {
    }

    /// <summary>Initializes a new instance with a message and a cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public ConsulException(string message, Exception? innerException)
        : base(message, innerException)
    {
        Endpoint = string.Empty;
        Kind = ConsulErrorKind.Unreachable;
    }

    /// <summary>Initializes a new instance describing a failed call.</summary>
    /// <param name="endpoint">The method and path called, for example <c>GET /v1/health/service/orders</c>.</param>
    /// <param name="kind">What went wrong.</param>
    /// <param name="statusCode">The HTTP status, when the agent answered.</param>
    /// <param name="message">What went wrong, naming the endpoint.</param>
    /// <param name="innerException">The cause, if any.</param>
    public ConsulException(string endpoint, ConsulErrorKind kind, HttpStatusCode? statusCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Endpoint = endpoint;
        Kind = kind;
        StatusCode = statusCode;
    }

    /// <summary>Initializes a new instance with no details.</summary>
    public ConsulException()
        : this("A call to Consul failed.")
    {
    }

    /// <summary>Gets the method and path called, for example <c>GET /v1/health/service/orders</c>.</summary>
    public string Endpoint { get; }

    /// <summary>Gets what went wrong.</summary>
    public ConsulErrorKind Kind { get; }

    /// <summary>Gets the HTTP status the agent answered with, or <see langword="null"/> when it did not answer.</summary>
    public HttpStatusCode? StatusCode { get; }
}
