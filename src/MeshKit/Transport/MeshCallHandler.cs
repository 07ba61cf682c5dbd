using System.Diagnostics;
using MeshKit.Identity;
using MeshKit.Telemetry;

namespace MeshKit.Transport;

/// <summary>
/// The outermost mesh stage, the logical call: decides whether a request is a mesh call (an https request to a mesh
/// destination name) and, if so, starts its <see cref="MeshCall"/>, its logical-call span (source <c>MeshKit</c>; .NET's
/// own HttpClient spans, one per attempt, become its children) and its golden metrics. Other requests carry no mesh call, so
/// every mesh stage lets them through untouched to the plain handler; or, with <c>Mesh:Client:NonMeshHosts</c> set to
/// <c>Refuse</c>, they fail here with <c>not_a_mesh_destination</c>.
/// </summary>
internal sealed class MeshCallHandler(MeshDestination.Cache destinations, NonMeshHostGate nonMesh, WorkloadIdentitySource identity, MeshClientSettings settings, MeshMetrics metrics, TimeProvider time)
    : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var destination = destinations.Get(request.RequestUri);
        if (destination is null)
        {
            if (nonMesh.Refuses)
            {
                throw nonMesh.Refuse(request.RequestUri);
            }

            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var call = new MeshCall(destination, request.Method);
        request.Options.Set(MeshCall.OptionsKey, call);
        request.Version = settings.HttpVersion;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionOrLower;

        var started = time.GetTimestamp();
        using var activity = MeshTelemetry.Source.StartActivity(destination.SpanName, ActivityKind.Internal);
        activity?.SetTag(MeshTelemetry.Attributes.DestinationService, destination.Service);
        activity?.SetTag(MeshTelemetry.Attributes.DestinationNamespace, destination.Namespace);
        activity?.SetTag("http.request.method", request.Method.Method);

        HttpResponseMessage? response = null;
        string outcome = "error";
        try
        {
            try
            {
                // Fail closed: no identity, no call.
                identity.GetValid();
            }
            catch (MeshIdentityException ex)
            {
                throw new MeshCallException("identity_unavailable", $"The mesh call to {destination} was not made: {ex.Message}", ex);
            }

            response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            outcome = response.IsSuccessStatusCode ? "success" : "http_error";
            return response;
        }
        catch (MeshCallException ex)
        {
            outcome = ex.Reason;
            activity?.SetTag("error.type", ex.Reason);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        catch (Exception ex)
        {
            outcome = "transport_error";
            activity?.SetTag("error.type", ex.GetType().FullName);
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            throw;
        }
        finally
        {
            var status = response is null ? 0 : (int)response.StatusCode;
            var statusClass = response is null ? "none" : MeshMetrics.StatusClass(status);
            metrics.RecordClientRequest(settings.SourceService, destination.Service, call.Subset, statusClass, outcome, time.GetElapsedTime(started).TotalSeconds);
            if (activity is not null)
            {
                activity.SetTag(MeshTelemetry.Attributes.Route, call.Route?.Name);
                activity.SetTag(MeshTelemetry.Attributes.Subset, call.Subset);
                activity.SetTag(MeshTelemetry.Attributes.SubsetReason, call.SubsetReason);
                activity.SetTag(MeshTelemetry.Attributes.Attempts, call.Attempt);
                activity.SetTag(MeshTelemetry.Attributes.RetryReason, call.RetryReason);
                activity.SetTag(MeshTelemetry.Attributes.Outcome, outcome);
                activity.SetTag(MeshTelemetry.Attributes.Endpoint, call.EndpointAddress);
                if (response is not null)
                {
                    activity.SetTag("http.response.status_code", status);
                    if (status >= 500)
                    {
                        activity.SetStatus(ActivityStatusCode.Error);
                    }
                }
            }
        }
    }
}

/// <summary>Per-client settings of the mesh stages, resolved once.</summary>
internal sealed class MeshClientSettings(Version httpVersion, string sourceService)
{
    public Version HttpVersion { get; } = httpVersion;

    public string SourceService { get; } = sourceService;
}
