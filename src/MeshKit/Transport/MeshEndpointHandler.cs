using MeshKit.Discovery;

namespace MeshKit.Transport;

/// <summary>Endpoint choice: picks the endpoint of the destination the current attempt goes to.</summary>
internal sealed class MeshEndpointHandler(MeshEndpointRegistry registry) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call is null)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var set = await registry.GetAsync(call.Destination.Host, cancellationToken).ConfigureAwait(false);
        var endpoints = set.Endpoints;
        if (endpoints.IsDefaultOrEmpty)
        {
            throw new MeshCallException(
                "no_endpoints",
                $"No endpoints are known for mesh destination '{call.Destination.Host}' (checked Mesh:Discovery:Static:{call.Destination.Host} and Consul, if configured)."
                + (set.Error is null ? string.Empty : $" Last discovery error: {set.Error.Message}"),
                set.Error);
        }

        call.Endpoint = endpoints.Length == 1 ? endpoints[0] : endpoints[Random.Shared.Next(endpoints.Length)];
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }
}
