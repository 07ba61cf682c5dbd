using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using MeshKit.Identity;
using MeshKit.Testing;

namespace MeshKit.ControlPlane.Tests.Signing;

public sealed class SignApiFixture : IAsyncLifetime
{
    public const string ShopToken = "shop-join-token-0123456789abcdef";
    public const string RevokedToken = "revoked-join-token-0123456789abc";

    public ControlPlaneHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Host = await ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:JoinTokens:shop:Token"] = ShopToken,
            ["ControlPlane:JoinTokens:shop:Services:0"] = "orders",
            ["ControlPlane:JoinTokens:shop:Services:1"] = "default/frontend",
            ["ControlPlane:JoinTokens:shop:Services:2"] = "payments/billing",
            ["ControlPlane:JoinTokens:old:Token"] = RevokedToken,
            ["ControlPlane:JoinTokens:old:Services:0"] = "orders",
        });
        using var admin = Host.CreateAdminClient();
        (await admin.PostAsync("v1/tokens/old/revoke", null)).EnsureSuccessStatusCode();
    }

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

[Trait("Area", "Identity")]
public sealed class SignApiTests(SignApiFixture fixture) : IClassFixture<SignApiFixture>
{
    private static readonly string Td = ControlPlaneHost.TrustDomain;
    private ControlPlaneHost Host => fixture.Host;

    [Fact]
    public async Task Sign_with_a_granted_token_returns_an_svid_with_exactly_the_CAs_extensions()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var id = SpiffeId.Create(Td, "default", "orders");
        using var client = Host.CreateClient(bearer: SignApiFixture.ShopToken);

        var started = DateTimeOffset.UtcNow;
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CsrAskingForMore(key, id) }, TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.Equal(id.Value, body.GetProperty("spiffeId").GetString());
        var chain = new X509Certificate2Collection();
        chain.ImportFromPem(body.GetProperty("certificateChain").GetString()!);
        var leaf = chain[0];

        // Exactly one URI SAN, the requested one; no DNS name smuggled in through the CSR.
        Assert.Equal([id.Value], SubjectAlternativeNames.GetUris(leaf));
        var san = leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Empty(san.EnumerateDnsNames());

        var basic = leaf.Extensions.OfType<X509BasicConstraintsExtension>().Single();
        Assert.False(basic.CertificateAuthority);
        var usage = leaf.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, usage.KeyUsages);
        var eku = leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single();
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value).Order());

        // The configured lifetime (5 s in tests), and the notAfter field says the same.
        var notAfter = body.GetProperty("notAfter").GetDateTimeOffset();
        Assert.Equal(leaf.NotAfter.ToUniversalTime(), notAfter.UtcDateTime, TimeSpan.FromSeconds(1));
        Assert.InRange(notAfter - started, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(8));

        // The key is ours, and the chain verifies against the returned bundle.
        using var leafKey = leaf.GetECDsaPublicKey()!;
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), leafKey.ExportSubjectPublicKeyInfo());
        var bundle = TrustBundle.FromPem(body.GetProperty("trustBundle").GetString()!);
        var validation = SvidValidator.Validate(leaf, chain, bundle, Td, DateTimeOffset.UtcNow, SvidUsage.Client);
        Assert.True(validation.IsValid, validation.Detail);
    }

    [Fact]
    public async Task A_bare_service_name_in_a_grant_means_the_default_namespace()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var status = await SignAsync(SpiffeId.Create(Td, "payments", "orders"), key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.Forbidden, status.Status);
        Assert.Equal("not-granted", status.Reason);

        status = await SignAsync(SpiffeId.Create(Td, "payments", "billing"), key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.OK, status.Status);
    }

    [Fact]
    public async Task Sign_for_a_service_the_token_does_not_grant_is_403_with_a_reason()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var result = await SignAsync(SpiffeId.Create(Td, "default", "inventory"), key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.Forbidden, result.Status);
        Assert.Equal("not-granted", result.Reason);
        Assert.Contains("default/inventory", result.Detail, StringComparison.Ordinal);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_for_the_reserved_mesh_system_namespace_is_403()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var result = await SignAsync(SpiffeId.Create(Td, "mesh-system", "control-plane"), key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.Forbidden, result.Status);
        Assert.Equal("reserved-namespace", result.Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_for_another_trust_domain_is_403()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var result = await SignAsync(SpiffeId.Create("other.mesh", "default", "orders"), key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.Forbidden, result.Status);
        Assert.Equal("wrong-trust-domain", result.Reason);
    }

    [Trait("Area", "Security")]
    [Theory]
    [InlineData("not a csr at all")]
    [InlineData("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----")]
    [InlineData("-----BEGIN CERTIFICATE REQUEST-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END CERTIFICATE REQUEST-----")]
    [InlineData("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")]
    public async Task Sign_with_a_garbage_csr_is_400(string csr)
    {
        var result = await PostAsync(new { csr }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("csr-malformed", result.Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_a_body_that_is_not_json_is_400()
    {
        using var client = Host.CreateClient(bearer: SignApiFixture.ShopToken);
        using var content = new StringContent("{\"csr\": ", Encoding.UTF8, "application/json");
        using var response = await client.PostAsync("v1/identity/sign", content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("body-malformed", (await ReadProblemAsync(response)).Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_a_csr_whose_signature_does_not_verify_is_400()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pem = CertificateSigningRequests.Create(key, SpiffeId.Create(Td, "default", "orders"));
        var der = PemEncoding.Find(pem) is var fields ? Convert.FromBase64String(pem[fields.Base64Data]) : null!;

        // The signature is the last BIT STRING: flip its last byte.
        der[^1] ^= 0x5A;
        var tampered = PemEncoding.WriteString("CERTIFICATE REQUEST", der);

        var result = await PostAsync(new { csr = tampered }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("csr-signature-invalid", result.Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_a_P384_or_short_RSA_key_is_400()
    {
        var id = SpiffeId.Create(Td, "default", "orders");
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var result = await PostAsync(new { csr = CertificateSigningRequests.Create(p384, id) }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("csr-key-unsupported", result.Reason);

        using var rsa = RSA.Create(1024);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(id.Value, critical: true));
        result = await PostAsync(new { csr = request.CreateSigningRequestPem() }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("csr-key-unsupported", result.Reason);
    }

    [Fact]
    public async Task Sign_with_an_RSA_2048_key_is_accepted()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(SubjectAlternativeNames.Create(SpiffeId.Create(Td, "default", "orders").Value, critical: true));
        var result = await PostAsync(new { csr = request.CreateSigningRequestPem() }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.OK, result.Status);
    }

    [Trait("Area", "Security")]
    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public async Task Sign_with_zero_or_several_identities_is_400(int count)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=orders"), key, HashAlgorithmName.SHA256);
        if (count > 0)
        {
            request.CertificateExtensions.Add(RawSan([.. Enumerable.Range(0, count).Select(i => $"spiffe://{Td}/ns/default/svc/orders{i}")]));
        }

        var result = await PostAsync(new { csr = request.CreateSigningRequestPem() }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("csr-identity-count", result.Reason);
    }

    [Trait("Area", "Security")]
    [Theory]
    [InlineData("spiffe://test.mesh/ns/evil/../svc/orders")]
    [InlineData("spiffe://test.mesh/ns/default/svc/./orders")]
    [InlineData("spiffe://test.mesh/ns/default/svc/ord%65rs")]
    [InlineData("spiffe://test.mesh/ns/default/svc/orders%2F..")]
    [InlineData("spiffe://TEST.mesh/ns/default/svc/orders")]
    [InlineData("SPIFFE://test.mesh/ns/default/svc/orders")]
    [InlineData("spiffe://test.mesh/ns/default/svc/orders/")]
    [InlineData("spiffe://test.mesh//ns/default/svc/orders")]
    [InlineData("spiffe://test.mesh:443/ns/default/svc/orders")]
    [InlineData("spiffe://user@test.mesh/ns/default/svc/orders")]
    [InlineData("spiffe://test.mesh/ns/default/svc/orders?x=1")]
    [InlineData("spiffe://test.mesh/ns/default/svc/Orders")]
    public async Task Sign_for_a_non_canonical_spiffe_id_is_400(string uri)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(RawSan(uri));
        var result = await PostAsync(new { csr = request.CreateSigningRequestPem() }, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.BadRequest, result.Status);
        Assert.Equal("spiffe-id-invalid", result.Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_no_token_is_401()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var result = await SignAsync(SpiffeId.Create(Td, "default", "orders"), key, bearer: null);
        Assert.Equal(HttpStatusCode.Unauthorized, result.Status);
        Assert.Equal("credentials-missing", result.Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_an_unknown_or_revoked_token_is_401_and_the_token_is_never_logged()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var id = SpiffeId.Create(Td, "default", "orders");
        var unknown = "not-a-real-token-0123456789abcdef";
        var result = await SignAsync(id, key, unknown);
        Assert.Equal(HttpStatusCode.Unauthorized, result.Status);
        Assert.Equal("token-unknown", result.Reason);

        result = await SignAsync(id, key, SignApiFixture.RevokedToken);
        Assert.Equal(HttpStatusCode.Unauthorized, result.Status);
        Assert.Equal("token-revoked", result.Reason);

        var logged = Host.Logs.AllText;
        Assert.Contains("token-revoked", logged, StringComparison.Ordinal);
        Assert.DoesNotContain(unknown, logged, StringComparison.Ordinal);
        Assert.DoesNotContain(SignApiFixture.RevokedToken, logged, StringComparison.Ordinal);
        Assert.DoesNotContain(SignApiFixture.ShopToken, logged, StringComparison.Ordinal);
        Assert.DoesNotContain(ControlPlaneHost.AdminToken, logged, StringComparison.Ordinal);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Sign_with_a_body_over_64_kB_is_413()
    {
        using var client = Host.CreateClient(bearer: SignApiFixture.ShopToken);
        var huge = JsonSerializer.Serialize(new { csr = new string('A', 70 * 1024) });
        using var content = new StringContent(huge, Encoding.UTF8, "application/json");
        using var response = await client.PostAsync("v1/identity/sign", content, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);

        // Without a Content-Length (chunked), the limit holds while reading.
        using var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(huge)));
        chunked.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/identity/sign") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var response2 = await client.SendAsync(request, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response2.StatusCode);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task Renewal_over_mTLS_is_allowed_for_the_same_identity_and_403_for_another()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var orders = SpiffeId.Create(Td, "default", "orders");
        var first = await SignAsync(orders, key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.OK, first.Status);
        using var current = X509Certificate2.CreateFromPem(first.Body.GetProperty("certificateChain").GetString()!).CopyWithPrivateKey(key);

        using var renewalKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var client = Host.CreateClient(clientCertificate: TestCertificates.ForTls(current));
        using var same = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(renewalKey, orders) }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, same.StatusCode);

        // The token grants frontend, but a renewal is authenticated by the certificate alone.
        using var other = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(renewalKey, SpiffeId.Create(Td, "default", "frontend")) }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        Assert.Equal("renewal-identity-mismatch", (await ReadProblemAsync(other)).Reason);
    }

    [Trait("Area", "Security")]
    [Fact]
    public async Task A_client_certificate_from_a_foreign_CA_cannot_renew()
    {
        using var foreignCa = TestCertificates.CreateRootCa();
        using var foreign = TestCertificates.CreateSvid(foreignCa, $"spiffe://{Td}/ns/default/svc/orders");
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var client = Host.CreateClient(clientCertificate: foreign);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", new { csr = CertificateSigningRequests.Create(key, SpiffeId.Create(Td, "default", "orders")) }, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("client-certificate-invalid", (await ReadProblemAsync(response)).Reason);
    }

    [Fact]
    public async Task Workloads_lists_issued_identities_for_the_admin_only()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var frontend = SpiffeId.Create(Td, "default", "frontend");
        var signed = await SignAsync(frontend, key, SignApiFixture.ShopToken);
        Assert.Equal(HttpStatusCode.OK, signed.Status);

        using var anonymous = Host.CreateClient();
        using var refused = await anonymous.GetAsync("v1/workloads", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        using var wrong = Host.CreateClient(bearer: SignApiFixture.ShopToken);
        using var refused2 = await wrong.GetAsync("v1/workloads", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Unauthorized, refused2.StatusCode);

        using var admin = Host.CreateAdminClient();
        var list = await admin.GetFromJsonAsync<JsonElement>("v1/workloads", TestContext.Current.CancellationToken);
        var entry = list.GetProperty("workloads").EnumerateArray().Single(w => w.GetProperty("spiffeId").GetString() == frontend.Value);
        using var leaf = X509Certificate2.CreateFromPem(signed.Body.GetProperty("certificateChain").GetString()!);
        Assert.Equal(leaf.SerialNumber, entry.GetProperty("certificateSerial").GetString());
        Assert.True(entry.GetProperty("lastSeen").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
        Assert.Equal(leaf.NotAfter.ToUniversalTime(), entry.GetProperty("notAfter").GetDateTimeOffset().UtcDateTime, TimeSpan.FromSeconds(1));
    }

    [Fact]
    public async Task The_trust_bundle_is_public_pem()
    {
        using var client = Host.CreateClient();
        var pem = await client.GetStringAsync("v1/trust-bundle", TestContext.Current.CancellationToken);
        var bundle = TrustBundle.FromPem(pem);
        Assert.Single(bundle.Roots);
        Assert.Equal(Host.TrustBundle.Version, bundle.Version);
    }

    private static string CsrAskingForMore(ECDsa key, SpiffeId id)
    {
        // Asks to be a CA with a DNS name and extra key usages; the CA must ignore all of it.
        var request = new CertificateRequest(new X500DistinguishedName("CN=evil"), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("evil.example");
        san.AddUri(new Uri(id.Value));
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.DigitalSignature, true));
        return request.CreateSigningRequestPem();
    }

    private static X509Extension RawSan(params string[] uris)
    {
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            foreach (var uri in uris)
            {
                writer.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, uri, new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 6));
            }
        }

        return new X509Extension("2.5.29.17", writer.Encode(), false);
    }

    private Task<SignResult> SignAsync(SpiffeId id, ECDsa key, string? bearer) =>
        PostAsync(new { csr = CertificateSigningRequests.Create(key, id) }, bearer);

    private async Task<SignResult> PostAsync(object body, string? bearer)
    {
        using var client = Host.CreateClient(bearer: bearer);
        using var response = await client.PostAsJsonAsync("v1/identity/sign", body, TestContext.Current.CancellationToken);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        var reason = json.TryGetProperty("reason", out var r) ? r.GetString() : null;
        var detail = json.TryGetProperty("detail", out var d) ? d.GetString() : null;
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }

        return new SignResult(response.StatusCode, reason, detail ?? string.Empty, json);
    }

    private static async Task<SignResult> ReadProblemAsync(HttpResponseMessage response)
    {
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        return new SignResult(response.StatusCode, json.GetProperty("reason").GetString(), json.GetProperty("detail").GetString() ?? string.Empty, json);
    }

    private sealed record SignResult(HttpStatusCode Status, string? Reason, string Detail, JsonElement Body);
}
