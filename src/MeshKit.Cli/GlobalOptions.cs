using System.CommandLine;
using System.Net;
using MeshKit.Identity;

namespace MeshKit.Cli;

/// <summary>The options every command accepts, and how each setting is found when it is not given.</summary>
internal sealed class GlobalOptions
{
    public const string DefaultControlPlane = "https://127.0.0.1:7443";

    public Option<string?> ControlPlane { get; } = new("--control-plane")
    {
        Description = $"The control service's address, or several replicas' addresses separated by commas (tried in order; the next one when a replica cannot be reached). Default: $MESHCTL_CONTROL_PLANE, else {DefaultControlPlane}.",
        HelpName = "url",
        Recursive = true,
    };

    public Option<string?> AdminToken { get; } = new("--admin-token")
    {
        Description = "The admin bearer token. Prefer $MESHCTL_ADMIN_TOKEN or --admin-token-file: a command line is visible to other users of the machine.",
        HelpName = "token",
        Recursive = true,
    };

    public Option<FileInfo?> AdminTokenFile { get; } = new("--admin-token-file")
    {
        Description = "A file holding the admin token (the control service writes one, 'admin-token', in its data folder). Default: $MESHCTL_ADMIN_TOKEN_FILE.",
        HelpName = "file",
        Recursive = true,
    };

    public Option<FileInfo?> TrustBundle { get; } = new("--trust-bundle")
    {
        Description = "PEM roots to trust the control service (and to validate certificates) with: its trust-bundle.pem. Default: $MESHCTL_TRUST_BUNDLE.",
        HelpName = "pem",
        Recursive = true,
    };

    public Option<string?> TrustDomain { get; } = new("--trust-domain")
    {
        Description = "The mesh's trust domain. Default: $MESHCTL_TRUST_DOMAIN, else read from the trust bundle's roots.",
        HelpName = "name",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Write JSON to standard output instead of tables.",
        Recursive = true,
    };

    public IEnumerable<Option> All => [ControlPlane, AdminToken, AdminTokenFile, TrustBundle, TrustDomain, Json];
}

/// <summary>Where and how to reach the control service, resolved from options, environment and the local data folder.</summary>
internal sealed class ControlPlaneSettings
{
    /// <summary>Gets the first address (the one messages name before any other was tried).</summary>
    public required Uri Address { get; init; }

    /// <summary>Gets every replica's address, in the order they are tried; the first is <see cref="Address"/>.</summary>
    public IReadOnlyList<Uri> Addresses { get; init; } = [];

    /// <summary>Gets the addresses to try: <see cref="Addresses"/>, or <see cref="Address"/> alone.</summary>
    public IReadOnlyList<Uri> AllAddresses => Addresses.Count > 0 ? Addresses : [Address];

    public TrustBundle? Bundle { get; init; }

    /// <summary>Gets where the bundle came from, for messages.</summary>
    public string? BundleSource { get; init; }

    /// <summary>Gets the admin token. Never printed.</summary>
    public string? AdminToken { get; init; }

    /// <summary>Gets where the admin token came from (an option, a variable or a file name; never the token).</summary>
    public string? AdminTokenSource { get; init; }

    public string? TrustDomain { get; init; }

    /// <summary>The same settings for one replica alone: calls go to <paramref name="address"/> and never move on to another.</summary>
    public ControlPlaneSettings ForReplica(Uri address) => new()
    {
        Address = address,
        Addresses = [address],
        Bundle = Bundle,
        BundleSource = BundleSource,
        AdminToken = AdminToken,
        AdminTokenSource = AdminTokenSource,
        TrustDomain = TrustDomain,
    };

    public static ControlPlaneSettings Resolve(GlobalOptions options, System.CommandLine.ParseResult parse, CliEnvironment environment)
    {
        var addressText = parse.GetValue(options.ControlPlane) ?? environment.GetVariable("MESHCTL_CONTROL_PLANE") ?? DefaultAddress;
        var addresses = new List<Uri>();
        foreach (var part in addressText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var parsed) || parsed.Scheme != Uri.UriSchemeHttps)
            {
                throw new MeshctlException(ExitCodes.Usage, $"--control-plane '{part}' is not an https:// address; the control service speaks HTTPS only (for example {GlobalOptions.DefaultControlPlane}, or several replicas separated by commas).");
            }

            addresses.Add(new Uri(parsed.GetLeftPart(UriPartial.Authority) + "/"));
        }

        if (addresses.Count == 0)
        {
            throw new MeshctlException(ExitCodes.Usage, $"--control-plane '{addressText}' names no address (for example {GlobalOptions.DefaultControlPlane}).");
        }

        var address = addresses[0];

        // The local control service's files are only used for a control service on this machine: its admin token must
        // never be sent anywhere else (so only when every address is this machine's).
        var local = addresses.TrueForAll(IsLoopback) ? environment.LocalControlPlaneDirectory : null;

        string? token = null;
        string? tokenSource = null;
        if (parse.GetValue(options.AdminToken) is { Length: > 0 } given)
        {
            (token, tokenSource) = (given, "--admin-token");
        }
        else if (parse.GetValue(options.AdminTokenFile) is { } file)
        {
            (token, tokenSource) = (ReadToken(file.FullName, "--admin-token-file"), file.FullName);
        }
        else if (environment.GetVariable("MESHCTL_ADMIN_TOKEN") is { Length: > 0 } variable)
        {
            (token, tokenSource) = (variable.Trim(), "$MESHCTL_ADMIN_TOKEN");
        }
        else if (environment.GetVariable("MESHCTL_ADMIN_TOKEN_FILE") is { Length: > 0 } variableFile)
        {
            (token, tokenSource) = (ReadToken(variableFile, "$MESHCTL_ADMIN_TOKEN_FILE"), variableFile);
        }
        else if (local is not null && File.Exists(Path.Combine(local, "admin-token")))
        {
            var path = Path.Combine(local, "admin-token");
            (token, tokenSource) = (ReadToken(path, "the local control service's admin-token file"), path);
        }

        string? bundlePath = parse.GetValue(options.TrustBundle)?.FullName ?? environment.GetVariable("MESHCTL_TRUST_BUNDLE");
        if (bundlePath is null && local is not null && File.Exists(Path.Combine(local, "trust-bundle.pem")))
        {
            bundlePath = Path.Combine(local, "trust-bundle.pem");
        }

        return new ControlPlaneSettings
        {
            Address = address,
            Addresses = addresses,
            Bundle = bundlePath is null ? null : LoadBundle(bundlePath),
            BundleSource = bundlePath,
            AdminToken = token,
            AdminTokenSource = tokenSource,
            TrustDomain = parse.GetValue(options.TrustDomain) ?? environment.GetVariable("MESHCTL_TRUST_DOMAIN"),
        };
    }

    /// <summary>Reads a trust bundle file, or fails with a usage error that names it.</summary>
    public static TrustBundle LoadBundle(string path)
    {
        try
        {
            return Identity.TrustBundle.FromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"The trust bundle '{path}' could not be read as PEM certificates: {ex.Message}", ex);
        }
    }

    /// <summary>Gets the trust domain: as given, else the one the bundle's roots name in their SPIFFE URI SAN.</summary>
    public string? ResolveTrustDomain() => TrustDomain ?? (Bundle is null ? null : TrustDomainOf(Bundle));

    public static string? TrustDomainOf(TrustBundle bundle)
    {
        foreach (var root in bundle.Roots)
        {
            foreach (var uri in SubjectAlternativeNames.GetUris(root))
            {
                if (uri.StartsWith(SpiffeId.Prefix, StringComparison.Ordinal))
                {
                    var domain = uri[SpiffeId.Prefix.Length..].TrimEnd('/');
                    if (SpiffeId.IsValidTrustDomain(domain, out _))
                    {
                        return domain;
                    }
                }
            }
        }

        return null;
    }

    private static string DefaultAddress => GlobalOptions.DefaultControlPlane;

    private static bool IsLoopback(Uri address) =>
        address.IsLoopback || (IPAddress.TryParse(address.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static string ReadToken(string path, string what)
    {
        try
        {
            var token = File.ReadAllText(path).Trim();
            return token.Length > 0 ? token : throw new MeshctlException(ExitCodes.Usage, $"The admin token file '{path}' ({what}) is empty.");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"The admin token file '{path}' ({what}) could not be read: {ex.Message}", ex);
        }
    }
}
