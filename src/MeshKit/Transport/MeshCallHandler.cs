using MeshKit.Identity;

namespace MeshKit.Transport;

/// <summary>
/// The outermost mesh stage: decides whether a request is a mesh call (an https request to a mesh destination name) and,
/// if so, starts its <see cref="MeshCall"/>. Other requests pass through every mesh stage untouched.
/// </summary>
internal sealed class MeshCallHandler(MeshDestination.Cache destinations, WorkloadIdentitySource identity, MeshClientSettings settings)
    : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var destination = destinations.Get(request.RequestUri);
        if (destination is null)
        {
            return base.SendAsync(request, cancellationToken);
        }

        try
        {
            // Fail closed: no identity, no call.
            identity.GetValid();
        }
        catch (MeshIdentityException ex)
        {
            return Task.FromException<HttpResponseMessage>(new MeshCallException("identity_unavailable", $"The mesh call to {destination} was not made: {ex.Message}", ex));
        }

        request.Options.Set(MeshCall.OptionsKey, new MeshCall(destination, request.Method));
        request.Version = settings.HttpVersion;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;
        return base.SendAsync(request, cancellationToken);
    }
}

/// <summary>Per-client settings of the mesh stages, resolved once.</summary>
internal sealed class MeshClientSettings(Version httpVersion)
{
    public Version HttpVersion { get; } = httpVersion;
}
