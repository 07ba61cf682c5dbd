using Microsoft.Extensions.Options;

namespace MeshKit.Consul;

/// <summary>
/// Validates <see cref="ConsulOptions"/>. Each error names the full configuration key
/// (<c>Mesh:Discovery:Consul:Wait</c>) and says what would be valid; none ever repeats the ACL token.
/// </summary>
public sealed class ConsulOptionsValidator : IValidateOptions<ConsulOptions>
{
    private const string Root = ConsulOptions.SectionPath;

    /// <summary>Validates <paramref name="options"/>.</summary>
    /// <param name="name">The options name (unused; Consul settings are not named).</param>
    /// <param name="options">The settings to check.</param>
    /// <returns>Success, or a failure listing every problem found.</returns>
    public ValidateOptionsResult Validate(string? name, ConsulOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();

        var address = options.Address;
        var isHttps = false;
        if (address is null)
        {
            errors.Add($"{Root}:Address is missing; give the agent's HTTP API address, for example http://127.0.0.1:8500.");
        }
        else if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{Root}:Address '{address}' is not an absolute http or https address; use for example http://127.0.0.1:8500 or https://consul.internal:8501.");
        }
        else if (!string.IsNullOrEmpty(address.Query) || !string.IsNullOrEmpty(address.Fragment) || !string.IsNullOrEmpty(address.UserInfo))
        {
            errors.Add($"{Root}:Address '{address.GetLeftPart(UriPartial.Path)}' carries a query, fragment or user info; give only scheme, host, port and an optional path prefix (the ACL token goes in {Root}:Token).");
        }
        else
        {
            isHttps = address.Scheme == Uri.UriSchemeHttps;
        }

        if (options.Token is { Length: > 0 } token && !IsHeaderSafe(token))
        {
            errors.Add($"{Root}:Token contains whitespace or control characters; give the token's SecretID exactly (a UUID for Consul ACL tokens).");
        }

        if (options.Datacenter is { Length: > 0 } dc && !IsDatacenterName(dc))
        {
            errors.Add($"{Root}:Datacenter '{dc}' is not a datacenter name; use letters, digits, '-' and '_' only (for example dc1), or leave it empty for the agent's own.");
        }

        var tls = options.Tls ?? new ConsulTlsOptions();
        const string TlsKey = Root + ":Tls";
        var anyTls = !string.IsNullOrEmpty(tls.CaFile) || !string.IsNullOrEmpty(tls.ClientCertificateFile) || !string.IsNullOrEmpty(tls.ClientKeyFile);
        if (anyTls && address is not null && address.IsAbsoluteUri && !isHttps)
        {
            errors.Add($"{TlsKey} is set but {Root}:Address '{address}' is not https; use an https address (Consul's HTTPS port is usually 8501) or remove the TLS files.");
        }

        CheckFile(errors, $"{TlsKey}:CaFile", tls.CaFile);
        CheckFile(errors, $"{TlsKey}:ClientCertificateFile", tls.ClientCertificateFile);
        CheckFile(errors, $"{TlsKey}:ClientKeyFile", tls.ClientKeyFile);
        if (!string.IsNullOrEmpty(tls.ClientKeyFile) && string.IsNullOrEmpty(tls.ClientCertificateFile))
        {
            errors.Add($"{TlsKey}:ClientKeyFile is set without {TlsKey}:ClientCertificateFile; set the certificate too, or remove the key.");
        }

        CheckRange(errors, "Wait", options.Wait, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(10), "00:00:01", "00:10:00 (Consul's maximum)");
        CheckRange(errors, "MinimumQueryInterval", options.MinimumQueryInterval, TimeSpan.Zero, TimeSpan.FromMinutes(1), "00:00:00", "00:01:00");
        CheckRange(errors, "RequestTimeout", options.RequestTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5), "00:00:01", "00:05:00");
        CheckRange(errors, "RetryBaseDelay", options.RetryBaseDelay, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1), "00:00:00.010", "00:01:00");
        if (options.RetryMaxDelay < options.RetryBaseDelay || options.RetryMaxDelay > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Root}:RetryMaxDelay is {options.RetryMaxDelay}; use a value from {Root}:RetryBaseDelay ({options.RetryBaseDelay}) to 00:10:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckRange(List<string> errors, string property, TimeSpan value, TimeSpan min, TimeSpan max, string minText, string maxText)
    {
        if (value < min || value > max)
        {
            errors.Add($"{Root}:{property} is {value}; use a value from {minText} to {maxText}.");
        }
    }

    private static void CheckFile(List<string> errors, string key, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return;
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"{key} contains a NUL character; give a plain path to a PEM file.");
        }
        else if (!File.Exists(path))
        {
            errors.Add($"{key} '{path}' does not exist; give the path of a readable PEM file.");
        }
    }

    private static bool IsHeaderSafe(string value)
    {
        foreach (var c in value)
        {
            if (c <= ' ' || c == '\u007f' || c > '~')
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDatacenterName(string value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '-' && c != '_')
            {
                return false;
            }
        }

        return true;
    }
}
