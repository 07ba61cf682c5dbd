using System.Net;
using Microsoft.Extensions.Options;

namespace MeshKit;

/// <summary>Validates <see cref="MeshOptions"/>; every error names its full configuration key and what would be valid.</summary>
internal sealed class MeshOptionsValidator : IValidateOptions<MeshOptions>
{
    private readonly bool _controlServiceRequired;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="controlServiceRequired">
    /// Whether certificates come from the control service, so that its address and trust bundle are required: always, except
    /// in test mode (an in-process CA registered by code of the MeshKit.Testing package, never by configuration).
    /// </param>
    public MeshOptionsValidator(bool controlServiceRequired = true)
    {
        _controlServiceRequired = controlServiceRequired;
    }

    public ValidateOptionsResult Validate(string? name, MeshOptions options)
    {
        var errors = new List<string>();
        const string Root = MeshOptions.SectionName;

        if (string.IsNullOrEmpty(options.Service.Name))
        {
            errors.Add($"{Root}:Service:Name is missing; set the name this service is known by in the mesh (a DNS label such as 'orders').");
        }
        else if (!MeshNames.IsValidServiceName(options.Service.Name, out var why))
        {
            errors.Add($"{Root}:Service:Name '{options.Service.Name}' {why}.");
        }

        if (!MeshNames.IsValidNamespace(options.Service.Namespace, out var nsWhy))
        {
            errors.Add($"{Root}:Service:Namespace '{options.Service.Namespace}' {nsWhy}.");
        }
        else if (MeshNames.IsReservedNamespace(options.Service.Namespace))
        {
            errors.Add($"{Root}:Service:Namespace '{MeshNames.ReservedNamespace}' is reserved for the control service.");
        }

        // An empty version is no version (an empty environment variable); any other is named by the subset rule.
        if (!string.IsNullOrEmpty(options.Service.Version) && !MeshNames.IsValidVersion(options.Service.Version, out var versionWhy))
        {
            errors.Add($"{Root}:Service:Version '{options.Service.Version}' {versionWhy}.");
        }

        if (!MeshNames.IsValidTrustDomain(options.TrustDomain, out var tdWhy))
        {
            errors.Add($"{Root}:TrustDomain '{options.TrustDomain}' {tdWhy}.");
        }

        var cp = options.ControlPlane;
        ValidateControlPlaneAddresses(cp, _controlServiceRequired, errors);

        if (string.IsNullOrEmpty(cp.TrustBundlePath))
        {
            if (_controlServiceRequired)
            {
                errors.Add($"{Root}:ControlPlane:TrustBundlePath is missing; point it at the control service's trust-bundle.pem (the PEM roots its certificate chains to).");
            }
        }
        else if (cp.TrustBundlePath.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"{Root}:ControlPlane:TrustBundlePath contains a NUL character.");
        }

        if (cp.StateDirectory is not null && cp.StateDirectory.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"{Root}:ControlPlane:StateDirectory contains a NUL character; set a folder path, or an empty value to keep no state.");
        }

        if (cp.StartupTimeout <= TimeSpan.Zero || cp.StartupTimeout > TimeSpan.FromHours(1))
        {
            errors.Add($"{Root}:ControlPlane:StartupTimeout is {cp.StartupTimeout}; use a value from 00:00:00.1 to 01:00:00.");
        }

        if (cp.WatchWait < TimeSpan.FromMilliseconds(100) || cp.WatchWait > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Root}:ControlPlane:WatchWait is {cp.WatchWait}; use a value from 00:00:00.1 to 00:10:00.");
        }

        if (cp.TrafficReportInterval < TimeSpan.FromMilliseconds(100) || cp.TrafficReportInterval > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Root}:ControlPlane:TrafficReportInterval is {cp.TrafficReportInterval}; use a value from 00:00:00.1 to 00:05:00 (default 00:00:10).");
        }

        if (cp.FailoverTimeout < TimeSpan.FromMilliseconds(100) || cp.FailoverTimeout > TimeSpan.FromMinutes(1))
        {
            errors.Add($"{Root}:ControlPlane:FailoverTimeout is {cp.FailoverTimeout}; use a value from 00:00:00.1 to 00:01:00 (default 00:00:01).");
        }

        var id = options.Identity;
        if (id.RenewalFraction is <= 0.05 or >= 0.95 || double.IsNaN(id.RenewalFraction))
        {
            errors.Add($"{Root}:Identity:RenewalFraction is {id.RenewalFraction}; use a fraction of the lifetime between 0.05 and 0.95 (default 0.5).");
        }

        if (id.RenewalJitter is < 0 or > 0.25 || double.IsNaN(id.RenewalJitter))
        {
            errors.Add($"{Root}:Identity:RenewalJitter is {id.RenewalJitter}; use a value from 0 to 0.25 (default 0.1).");
        }
        else if (id.RenewalFraction - id.RenewalJitter <= 0 || id.RenewalFraction + id.RenewalJitter >= 1)
        {
            errors.Add($"{Root}:Identity:RenewalFraction ± RenewalJitter must stay inside (0, 1).");
        }

        if (id.RetryBaseDelay <= TimeSpan.Zero || id.RetryMaxDelay < id.RetryBaseDelay)
        {
            errors.Add($"{Root}:Identity:RetryBaseDelay must be positive and {Root}:Identity:RetryMaxDelay at least as long.");
        }

        var endpoint = options.Endpoint;
        if (endpoint.Port is < 0 or > 65535)
        {
            errors.Add($"{Root}:Endpoint:Port is {endpoint.Port}; use 0 (any free port) to 65535.");
        }

        if (!IsBindable(endpoint.Address))
        {
            errors.Add($"{Root}:Endpoint:Address '{endpoint.Address}' is not an IP address, 'localhost' or '*'.");
        }

        if (endpoint.MaxConnections < 1)
        {
            errors.Add($"{Root}:Endpoint:MaxConnections is {endpoint.MaxConnections}; use 1 or more.");
        }

        if (endpoint.HandshakeTimeout < TimeSpan.FromMilliseconds(100) || endpoint.HandshakeTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Root}:Endpoint:HandshakeTimeout is {endpoint.HandshakeTimeout}; use a value from 00:00:00.1 to 00:05:00.");
        }

        var transport = options.Transport;
        if (transport.MaxConnectionLifetime <= TimeSpan.Zero)
        {
            errors.Add($"{Root}:Transport:MaxConnectionLifetime must be positive.");
        }

        if (transport.ConnectTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{Root}:Transport:ConnectTimeout must be positive.");
        }

        if (transport.HttpVersion != HttpVersion.Version20 && transport.HttpVersion != HttpVersion.Version11)
        {
            errors.Add($"{Root}:Transport:HttpVersion is {transport.HttpVersion}; use 2.0 (default) or 1.1.");
        }

        // Settable from code too (MeshOptions.Health): a path ASP.NET Core would refuse at start is named here instead.
        if (options.Health.ReadinessPath is { Length: > 0 } readiness && (readiness[0] != '/' || readiness.Contains('?', StringComparison.Ordinal)))
        {
            errors.Add($"{Root}:Health:ReadinessPath '{readiness}' is not a path; use one starting with '/' (default /mesh/ready), or an empty value to map none.");
        }

        ValidateClient(options.Client, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>
    /// Mesh:ControlPlane:Address, :Addresses and :ConsulService: where the control service's replicas are. At least one
    /// must say; every address is an absolute https:// address, and the Consul service name is one Consul accepts.
    /// </summary>
    private static void ValidateControlPlaneAddresses(MeshControlPlaneOptions cp, bool required, List<string> errors)
    {
        const string Key = MeshOptions.SectionName + ":ControlPlane";
        var hasConsulService = !string.IsNullOrEmpty(cp.ConsulService);
        var any = hasConsulService;
        if (MeshControlPlaneOptions.IsSet(cp.Address))
        {
            any = true;
            if (cp.Address!.IsAbsoluteUri && cp.Address.UserInfo.Length > 0)
            {
                errors.Add($"{Key}:Address carries user information; give the control service's https:// address without it.");
            }
            else if (!IsHttps(cp.Address))
            {
                errors.Add($"{Key}:Address '{cp.Address}' must be an absolute https:// address, for example https://127.0.0.1:7443 (list further replicas as {Key}:Addresses:0, :1, ...).");
            }
        }

        for (var i = 0; i < cp.Addresses.Count; i++)
        {
            var address = cp.Addresses[i];
            if (!MeshControlPlaneOptions.IsSet(address))
            {
                errors.Add($"{Key}:Addresses:{i} is empty; give a replica's https:// address or remove the entry.");
                continue;
            }

            any = true;
            if (address.IsAbsoluteUri && address.UserInfo.Length > 0)
            {
                // Not echoed: the user information may be a credential.
                errors.Add($"{Key}:Addresses:{i} carries user information; give the replica's https:// address without it.");
            }
            else if (!IsHttps(address))
            {
                errors.Add($"{Key}:Addresses:{i} '{address}' must be an absolute https:// address, for example https://10.0.0.2:7443.");
            }
        }

        if (!any && required)
        {
            errors.Add($"{Key}:Address is missing; set the control service's HTTPS address, for example https://127.0.0.1:7443 (for several replicas, "
                + $"{Key}:Addresses:0, :1, ...; or {Key}:ConsulService to find them in Consul).");
        }

        if (hasConsulService && !MeshNames.IsValidServiceName(cp.ConsulService, out var why))
        {
            errors.Add($"{Key}:ConsulService '{cp.ConsulService}' {why}; name the Consul service the control service's replicas register as, for example mesh-control.");
        }
    }

    private static bool IsHttps(Uri address) =>
        address.IsAbsoluteUri && address.Scheme == Uri.UriSchemeHttps && address.Host.Length > 0
        && string.IsNullOrEmpty(address.UserInfo) && string.IsNullOrEmpty(address.Query) && string.IsNullOrEmpty(address.Fragment);

    /// <summary>Mesh:Client: the namespaces mesh clients call, and what they do with other hosts.</summary>
    private static void ValidateClient(MeshClientOptions client, List<string> errors)
    {
        const string Key = MeshOptions.SectionName + ":Client";
        for (var i = 0; i < client.Namespaces.Count; i++)
        {
            var ns = client.Namespaces[i];
            if (!MeshNames.IsValidNamespace(ns, out var why))
            {
                errors.Add($"{Key}:Namespaces:{i} '{ns}' {why}.");
            }
            else if (MeshNames.IsReservedNamespace(ns))
            {
                errors.Add($"{Key}:Namespaces:{i} '{ns}' is reserved for the control service; mesh clients never call it.");
            }
            else if (MeshNames.IsSpecialUseNamespace(ns))
            {
                errors.Add($"{Key}:Namespaces:{i} '{ns}' is a special-use DNS name (RFC 6761, RFC 6762), never a mesh namespace.");
            }
        }

        if (!Enum.IsDefined(client.NonMeshHosts))
        {
            errors.Add($"{Key}:NonMeshHosts is {client.NonMeshHosts}; use PassThrough (default) or Refuse.");
        }

        if (client.RequestBufferLimit is < 0 or > 16 * 1024 * 1024)
        {
            errors.Add($"{Key}:RequestBufferLimit is {client.RequestBufferLimit}; use 0 (keep no body) to 16777216 bytes (default 65536).");
        }
    }

    private static bool IsBindable(string? address) =>
        address is "*" or "localhost" || IPAddress.TryParse(address, out _);
}
