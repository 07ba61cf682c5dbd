using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MeshKit.Identity;
using Spectre.Console;

namespace MeshKit.Cli.Certificates;

/// <summary>One certificate of an inspected chain.</summary>
internal sealed record CertificateView(
    int Index,
    string Role,
    string Subject,
    string Issuer,
    string Serial,
    DateTimeOffset NotBefore,
    DateTimeOffset NotAfter,
    double ExpiresInSeconds,
    bool IsCertificateAuthority,
    string? SpiffeId,
    IReadOnlyList<string> Uris,
    IReadOnlyList<string> DnsNames,
    IReadOnlyList<string> IpAddresses,
    string Key,
    string Sha256);

/// <summary>The outcome of validating the leaf against a trust bundle.</summary>
internal sealed record CertificateValidationView(bool Checked, bool Valid, string? SpiffeId, string? Rejection, string? Detail, string? Root, string? TrustBundle);

/// <summary><c>meshctl cert inspect --json</c>.</summary>
internal sealed record CertificateReport(
    string Target,
    string Source,
    string? ServerName,
    IReadOnlyList<CertificateView> Certificates,
    CertificateValidationView Validation,
    IReadOnlyList<string> Notes);

/// <summary><c>meshctl cert inspect</c>: the SPIFFE ID, chain and expiry of a certificate file or of what a TLS server presents.</summary>
internal static class CertCommands
{
    public static Command Create(GlobalOptions options, CliEnvironment environment)
    {
        var cert = new Command("cert", "Inspect X.509-SVIDs.");
        var target = new Argument<string>("target") { Description = "A PEM or DER certificate file (a chain is shown whole), or host:port of a TLS server (a mesh endpoint, the control service)." };
        var serverName = new Option<string?>("--server-name") { Description = "The TLS server name (SNI) to send to host:port. Mesh endpoints are called by the logical service name (orders). Default: the host.", HelpName = "name" };
        var usage = new Option<SvidUsage?>("--usage") { Description = "Check the leaf's extended key usage for Server or Client authentication. Default: Server for host:port, either for a file." };
        var inspect = new Command("inspect", "Show a certificate's SPIFFE ID, chain and expiry. With --trust-bundle (or $MESHCTL_TRUST_BUNDLE) the leaf is validated as an X.509-SVID the way mesh peers validate it; exit 1 when it does not validate or has expired.")
        {
            target,
            serverName,
            usage,
        };
        inspect.SetBody(options, environment, async (context, cancellationToken) =>
        {
            var text = context.Value(target)!;
            var notes = new List<string>();
            X509Certificate2Collection chain;
            string source;
            string? sni = null;
            if (File.Exists(text))
            {
                chain = LoadFile(text);
                source = "file";
            }
            else if (TryParseHostPort(text, out var host, out var port))
            {
                sni = context.Value(serverName) ?? host;
                chain = await FetchAsync(host, port, sni, notes, cancellationToken).ConfigureAwait(false);
                source = "tls";
            }
            else
            {
                throw new MeshctlException(ExitCodes.Usage, $"'{text}' is neither a file nor host:port.");
            }

            var bundlePath = context.Parse.GetValue(options.TrustBundle)?.FullName ?? context.Environment.GetVariable("MESHCTL_TRUST_BUNDLE");
            var bundle = bundlePath is null ? null : ControlPlaneSettings.LoadBundle(bundlePath);
            var trustDomain = context.Parse.GetValue(options.TrustDomain) ?? context.Environment.GetVariable("MESHCTL_TRUST_DOMAIN");
            var now = DateTimeOffset.UtcNow;
            var views = chain.Select((c, i) => View(c, i, chain.Count, now)).ToList();
            var validation = Validate(chain, bundle, bundlePath, trustDomain, context.Value(usage) ?? (source == "tls" ? SvidUsage.Server : null), now);
            var report = new CertificateReport(text, source, sni, views, validation, notes);
            if (context.Json)
            {
                context.WriteJson(report);
            }
            else
            {
                Render(context.Console, report);
            }

            var leafExpired = views.Count > 0 && views[0].ExpiresInSeconds <= 0;
            return (validation.Checked && !validation.Valid) || leafExpired ? ExitCodes.Findings : ExitCodes.Ok;
        });
        cert.Subcommands.Add(inspect);
        return cert;
    }

    private static X509Certificate2Collection LoadFile(string path)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            var text = File.ReadAllText(path);
            if (text.Contains("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal))
            {
                collection.ImportFromPem(text);
            }
            else
            {
                collection.Add(X509CertificateLoader.LoadCertificateFromFile(path));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new MeshctlException(ExitCodes.Usage, $"'{path}' could not be read as a PEM or DER certificate: {ex.Message}", ex);
        }

        return collection.Count > 0 ? collection : throw new MeshctlException(ExitCodes.Usage, $"'{path}' holds no certificate.");
    }

    private static async Task<X509Certificate2Collection> FetchAsync(string host, int port, string serverName, List<string> notes, CancellationToken cancellationToken)
    {
        var presented = new X509Certificate2Collection();
        using var tcp = new TcpClient();
        using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            connect.CancelAfter(TimeSpan.FromSeconds(10));
            try
            {
                await tcp.ConnectAsync(host, port, connect.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new MeshctlException(ExitCodes.Unreachable, $"{host}:{port} could not be reached: {ex.Message}", ex);
            }
        }

        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            // Inspection only: record what the server presents; validation is done afterwards against the bundle given.
            RemoteCertificateValidationCallback = (_, certificate, chain, _) =>
            {
                if (certificate is not null && presented.Count == 0)
                {
                    presented.Add(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                    foreach (var extra in chain?.ChainPolicy.ExtraStore ?? [])
                    {
                        // The platform lists the leaf among the extra certificates too; show each certificate once.
                        if (!presented.Cast<X509Certificate2>().Any(p => p.RawDataMemory.Span.SequenceEqual(extra.RawDataMemory.Span)))
                        {
                            presented.Add(X509CertificateLoader.LoadCertificate(extra.RawData));
                        }
                    }
                }

                return true;
            },
        };
        using var handshake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        handshake.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await tls.AuthenticateAsClientAsync(options, handshake.Token).ConfigureAwait(false);
            notes.Add($"TLS {tls.SslProtocol} handshake with {host}:{port} (server name {serverName}).");
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            if (presented.Count == 0)
            {
                throw new MeshctlException(ExitCodes.Unreachable, $"The TLS handshake with {host}:{port} failed before the server presented a certificate: {ex.GetBaseException().Message}", ex);
            }

            notes.Add($"The server ended the handshake after presenting its certificate ({ex.GetBaseException().Message}); mesh endpoints require a client certificate.");
        }

        return presented;
    }

    private static CertificateValidationView Validate(X509Certificate2Collection chain, TrustBundle? bundle, string? bundlePath, string? trustDomain, SvidUsage? usage, DateTimeOffset now)
    {
        if (bundle is null)
        {
            return new CertificateValidationView(false, false, null, null, "Not validated: give --trust-bundle (or set $MESHCTL_TRUST_BUNDLE).", null, null);
        }

        var leaf = chain[0];
        var uris = SubjectAlternativeNames.GetUris(leaf);
        trustDomain ??= ControlPlaneSettings.TrustDomainOf(bundle) ?? (uris.Count == 1 && SpiffeId.TryParse(uris[0], out var claimed) ? claimed.TrustDomain : null);
        if (trustDomain is null)
        {
            return new CertificateValidationView(true, false, null, nameof(SvidRejection.InvalidSpiffeId), "The certificate carries no SPIFFE ID and no trust domain is known (give --trust-domain).", null, bundlePath);
        }

        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < chain.Count; i++)
        {
            intermediates.Add(chain[i]);
        }

        var result = SvidValidator.Validate(leaf, intermediates, bundle, trustDomain, now, usage);
        return new CertificateValidationView(true, result.IsValid, result.SpiffeId?.Value, result.IsValid ? null : result.Rejection.ToString(), result.Detail, FindRoot(leaf, intermediates, bundle), bundlePath);
    }

    /// <summary>The bundle root the leaf chains to, by building the chain against the bundle alone.</summary>
    private static string? FindRoot(X509Certificate2 leaf, X509Certificate2Collection intermediates, TrustBundle bundle)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid;
        chain.ChainPolicy.CustomTrustStore.AddRange(bundle.Roots.ToArray());
        chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        if (!chain.Build(leaf) || chain.ChainElements.Count == 0)
        {
            return null;
        }

        var root = chain.ChainElements[^1].Certificate;
        return $"{root.Subject} (sha256 {root.GetCertHashString(HashAlgorithmName.SHA256)})";
    }

    private static CertificateView View(X509Certificate2 certificate, int index, int count, DateTimeOffset now)
    {
        var isCa = certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault()?.CertificateAuthority == true;
        var uris = SubjectAlternativeNames.GetUris(certificate);
        var dns = new List<string>();
        var ips = new List<string>();
        if (certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault() is { } san)
        {
            dns.AddRange(san.EnumerateDnsNames());
            ips.AddRange(san.EnumerateIPAddresses().Select(ip => ip.ToString()));
        }

        var spiffe = uris.FirstOrDefault(u => u.StartsWith(SpiffeId.Prefix, StringComparison.Ordinal));
        var selfSigned = certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);
        var role = index == 0 && !isCa ? "leaf" : selfSigned ? "root" : isCa ? "intermediate" : index == 0 ? "leaf" : "other";
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
        return new CertificateView(
            index,
            count == 1 && role == "other" ? "leaf" : role,
            certificate.Subject,
            certificate.Issuer,
            certificate.SerialNumber,
            new DateTimeOffset(certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero),
            notAfter,
            Math.Round((notAfter - now).TotalSeconds, 1),
            isCa,
            spiffe,
            uris,
            dns,
            ips,
            DescribeKey(certificate),
            certificate.GetCertHashString(HashAlgorithmName.SHA256));
    }

    private static string DescribeKey(X509Certificate2 certificate)
    {
        using var ecdsa = certificate.GetECDsaPublicKey();
        if (ecdsa is not null)
        {
            return ecdsa.ExportParameters(false).Curve.Oid.Value switch
            {
                "1.2.840.10045.3.1.7" => "ECDSA P-256",
                "1.3.132.0.34" => "ECDSA P-384",
                "1.3.132.0.35" => "ECDSA P-521",
                _ => $"ECDSA {ecdsa.KeySize.ToString(CultureInfo.InvariantCulture)} bits",
            };
        }

        using var rsa = certificate.GetRSAPublicKey();
        return rsa is not null ? $"RSA {rsa.KeySize.ToString(CultureInfo.InvariantCulture)}" : certificate.PublicKey.Oid.FriendlyName ?? certificate.PublicKey.Oid.Value ?? "unknown";
    }

    private static bool TryParseHostPort(string text, out string host, out int port)
    {
        host = string.Empty;
        port = 0;
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is <= 0 or > 65535)
        {
            return false;
        }

        host = text[..colon].Trim('[', ']');
        return IPAddress.TryParse(host, out _) || Uri.CheckHostName(host) == UriHostNameType.Dns;
    }

    private static void Render(IAnsiConsole console, CertificateReport report)
    {
        console.MarkupLine($"[bold]{Markup.Escape(report.Target)}[/] ({Markup.Escape(report.Source == "tls" ? $"what the server presents, server name {report.ServerName}" : "file")})");
        foreach (var c in report.Certificates)
        {
            var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumns("Field", "Value")
                .Title($"#{c.Index} {c.Role}");
            var expiry = c.ExpiresInSeconds <= 0 ? $"[red]expired {Markup.Escape(Durations.Format(TimeSpan.FromSeconds(-c.ExpiresInSeconds)))} ago[/]" : $"in {Markup.Escape(Durations.Format(TimeSpan.FromSeconds(c.ExpiresInSeconds)))}";
            table.AddRow("SPIFFE ID", c.SpiffeId is null ? "-" : $"[bold]{Markup.Escape(c.SpiffeId)}[/]");
            table.AddRow("Subject", Markup.Escape(c.Subject));
            table.AddRow("Issuer", Markup.Escape(c.Issuer));
            table.AddRow("Serial", Markup.Escape(c.Serial));
            table.AddRow("Valid", Markup.Escape($"{c.NotBefore.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z to {c.NotAfter.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z") + $" ({expiry})");
            if (c.DnsNames.Count + c.IpAddresses.Count > 0 || c.Uris.Count > 1)
            {
                table.AddRow("Other names", Markup.Escape(string.Join(", ", c.Uris.Where(u => u != c.SpiffeId).Concat(c.DnsNames).Concat(c.IpAddresses))));
            }

            table.AddRow("CA", c.IsCertificateAuthority ? "yes" : "no");
            table.AddRow("Key", Markup.Escape(c.Key));
            table.AddRow("SHA-256", Markup.Escape(c.Sha256));
            console.Write(table);
        }

        var v = report.Validation;
        if (!v.Checked)
        {
            console.MarkupLine($"[grey]{Markup.Escape(v.Detail ?? string.Empty)}[/]");
        }
        else if (v.Valid)
        {
            console.MarkupLine($"[green]valid[/] X.509-SVID {Markup.Escape(v.SpiffeId ?? string.Empty)}, chains to {Markup.Escape(v.Root ?? "?")} in {Markup.Escape(v.TrustBundle ?? string.Empty)}");
        }
        else
        {
            console.MarkupLine($"[red]not valid[/] ({Markup.Escape(v.Rejection ?? string.Empty)}): {Markup.Escape(v.Detail ?? string.Empty)}");
        }

        foreach (var note in report.Notes)
        {
            console.MarkupLine($"[grey]note[/] {Markup.Escape(note)}");
        }
    }
}
