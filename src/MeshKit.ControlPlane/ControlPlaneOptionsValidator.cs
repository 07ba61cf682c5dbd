using MeshKit.ControlPlane.Tokens;
using MeshKit.Identity;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlPlane;

/// <summary>Validates <see cref="ControlPlaneOptions"/>; every error names its configuration key and what would be valid.</summary>
internal sealed class ControlPlaneOptionsValidator : IValidateOptions<ControlPlaneOptions>
{
    internal const int MinimumTokenLength = 16;
    private static readonly TimeSpan MinimumLifetime = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaximumLifetime = TimeSpan.FromDays(366);

    public ValidateOptionsResult Validate(string? name, ControlPlaneOptions options)
    {
        var errors = new List<string>();
        const string Root = ControlPlaneOptions.SectionName;

        if (!SpiffeId.IsValidTrustDomain(options.TrustDomain, out var why))
        {
            errors.Add($"{Root}:TrustDomain '{options.TrustDomain}' {why}.");
        }

        if (options.CertificateLifetime < MinimumLifetime || options.CertificateLifetime > MaximumLifetime)
        {
            errors.Add($"{Root}:CertificateLifetime is {options.CertificateLifetime}; use a value from 00:00:01 to 366.00:00:00.");
        }

        if (options.MaxWatchWait < TimeSpan.FromSeconds(1) || options.MaxWatchWait > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Root}:MaxWatchWait is {options.MaxWatchWait}; use a value from 00:00:01 to 00:10:00.");
        }

        if (options.Consul.Address is not null && options.Policy.Consul?.Address is not null)
        {
            errors.Add($"{Root}:Consul:Address and {Root}:Policy:Consul:Address are both set; keep {Root}:Consul (it holds the policy under <KeyPrefix>policy/) and remove {Root}:Policy:Consul.");
        }

        if (options.Consul.Address is { } consul && !consul.IsAbsoluteUri)
        {
            errors.Add($"{Root}:Consul:Address '{consul}' must be an absolute http or https address such as http://127.0.0.1:8500.");
        }

        if (options.Consul.Address is not null && (options.Consul.KeyPrefix.Length == 0 || options.Consul.KeyPrefix.StartsWith('/')))
        {
            errors.Add($"{Root}:Consul:KeyPrefix '{options.Consul.KeyPrefix}' must be a non-empty KV path that does not start with '/', such as meshkit/.");
        }

        if (options.Consul.Wait < TimeSpan.FromSeconds(1) || options.Consul.Wait > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Root}:Consul:Wait is {options.Consul.Wait}; use a value from 00:00:01 to 00:10:00.");
        }

        if (options.Consul.RevocationsMaxStaleness is { } staleness && (staleness < options.Consul.Wait * 2 || staleness > TimeSpan.FromHours(24)))
        {
            errors.Add($"{Root}:Consul:RevocationsMaxStaleness is {staleness}; use a value from twice {Root}:Consul:Wait ({options.Consul.Wait * 2}: a healthy replica hears from Consul once per wait) to 1.00:00:00.");
        }

        if (options.Consul.LockTtl < TimeSpan.FromSeconds(1) || options.Consul.LockTtl > TimeSpan.FromHours(24))
        {
            errors.Add($"{Root}:Consul:LockTtl is {options.Consul.LockTtl}; use a value from 00:00:01 to 1.00:00:00 (Consul agents refuse less than their session_ttl_min, 00:00:10 by default).");
        }

        if (options.Consul.LockDelay < TimeSpan.Zero || options.Consul.LockDelay > TimeSpan.FromSeconds(60))
        {
            errors.Add($"{Root}:Consul:LockDelay is {options.Consul.LockDelay}; use a value from 00:00:00 to 00:01:00 (Consul cuts longer lock delays to 60 seconds).");
        }

        ValidateRegistration(options, errors);

        if (options.AdminToken is { Length: > 0 } admin && admin.Length < MinimumTokenLength)
        {
            errors.Add($"{Root}:AdminToken is too short; use at least {MinimumTokenLength} random characters.");
        }

        foreach (var (tokenName, token) in options.JoinTokens)
        {
            var key = $"{Root}:JoinTokens:{tokenName}";
            if (string.IsNullOrEmpty(token.Token))
            {
                errors.Add($"{key}:Token is missing; set a secret of at least {MinimumTokenLength} random characters.");
            }
            else if (token.Token.Length < MinimumTokenLength)
            {
                errors.Add($"{key}:Token is too short; use at least {MinimumTokenLength} random characters.");
            }

            if (token.Services.Count == 0)
            {
                errors.Add($"{key}:Services is empty; list the services it grants as '<namespace>/<service>' or '<service>'.");
            }

            for (var i = 0; i < token.Services.Count; i++)
            {
                if (!ServiceGrant.TryParse(token.Services[i], options.AllowWildcardGrants, out _, out var error))
                {
                    errors.Add($"{key}:Services:{i} '{token.Services[i]}' {error}");
                }
            }
        }

        var ca = options.Ca;
        const string CaKey = Root + ":Ca";
        if (string.IsNullOrEmpty(ca.CertificatePath) != string.IsNullOrEmpty(ca.KeyPath))
        {
            errors.Add($"{CaKey}:CertificatePath and {CaKey}:KeyPath go together; set both to use your own CA, or neither to let the control service generate a root.");
        }

        if (!string.IsNullOrEmpty(ca.TrustBundlePath) && string.IsNullOrEmpty(ca.CertificatePath))
        {
            errors.Add($"{CaKey}:TrustBundlePath is only used with {CaKey}:CertificatePath (an intermediate CA).");
        }

        CheckPath(errors, $"{CaKey}:CertificatePath", ca.CertificatePath);
        CheckPath(errors, $"{CaKey}:KeyPath", ca.KeyPath);
        CheckPath(errors, $"{CaKey}:TrustBundlePath", ca.TrustBundlePath);
        CheckPath(errors, $"{Root}:DataDirectory", options.DataDirectory);

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>ControlPlane:Registration and ControlPlane:AdvertiseAddress: how a replica registers in Consul.</summary>
    private static void ValidateRegistration(ControlPlaneOptions options, List<string> errors)
    {
        const string Key = ControlPlaneOptions.SectionName + ":Registration";
        var registration = options.Registration;
        if (!string.IsNullOrEmpty(registration.ServiceName) && !MeshNames.IsValidServiceName(registration.ServiceName, out var why))
        {
            errors.Add($"{Key}:ServiceName '{registration.ServiceName}' {why}; use a name such as mesh-control, or an empty value to register nothing.");
        }

        if (registration.Ttl < TimeSpan.FromSeconds(1) || registration.Ttl > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Key}:Ttl is {registration.Ttl}; use a value from 00:00:01 to 00:10:00 (default 00:00:10).");
        }

        if (registration.DeregisterCriticalServiceAfter < TimeSpan.FromMinutes(1) || registration.DeregisterCriticalServiceAfter > TimeSpan.FromDays(1))
        {
            errors.Add($"{Key}:DeregisterCriticalServiceAfter is {registration.DeregisterCriticalServiceAfter}; use a value from 00:01:00 (Consul's minimum) to 1.00:00:00.");
        }

        if (options.AdvertiseAddress is { Length: > 0 } advertise
            && (Uri.CheckHostName(advertise.Trim('[', ']')) == UriHostNameType.Unknown || advertise is "0.0.0.0" or "::" or "[::]"))
        {
            errors.Add($"{ControlPlaneOptions.SectionName}:AdvertiseAddress '{advertise}' is not a host name or IP address workloads can reach (no scheme, no port), for example 10.0.0.5 or control-1.internal.");
        }
    }

    private static void CheckPath(List<string> errors, string key, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"{key} contains a NUL character; give a plain file path.");
        }
    }
}
