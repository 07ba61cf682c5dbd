using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using MeshKit.ControlPlane;
using MeshKit.ControlPlane.Signing;
using MeshKit.ControlPlane.Storage;
using MeshKit.Identity;
using Microsoft.Extensions.Options;

namespace MeshKit.Benchmarks.ControlPlane;

/// <summary>
/// The control service's sign path, stage by stage, single-threaded: what a <c>POST /v1/identity/sign</c> costs in CPU
/// besides HTTP and TLS. The raw ECDSA P-256 signature and verification are the floor (every sign request verifies the
/// CSR's signature once and signs the certificate once).
/// </summary>
public class SigningBenchmarks
{
    private readonly SpiffeId _id = SpiffeId.Create("mesh.local", SpiffeId.DefaultNamespace, "orders");
    private string _data = null!;
    private MeshKit.ControlPlane.CertificateAuthority.CertificateAuthority _ca = null!;
    private ECDsa _key = null!;
    private string _csr = null!;
    private InspectedCsr _inspected = null!;
    private byte[] _hash = null!;
    private byte[] _signature = null!;
    private SignResponse _answer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _data = Path.Combine(Path.GetTempPath(), "meshkit-signing-bench-" + Guid.NewGuid().ToString("N"));
        var options = Options.Create(new ControlPlaneOptions { DataDirectory = _data });
        _ca = new MeshKit.ControlPlane.CertificateAuthority.CertificateAuthority(options, new ControlPlaneDataDirectory(options), TimeProvider.System);
        _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        _csr = CertificateSigningRequests.Create(_key, _id);
        if (!CsrInspector.TryInspect(_csr, out var inspected, out var refusal))
        {
            throw new InvalidOperationException(refusal!.Detail);
        }

        _inspected = inspected!;
        _hash = SHA256.HashData("a certificate's to-be-signed bytes"u8);
        _signature = _key.SignHash(_hash);
        var issued = _ca.Issue(_id, _inspected.PublicKey);
        _answer = new SignResponse(_id.Value, issued.ChainPem, issued.Bundle.Pem, issued.Bundle.Version, DateTimeOffset.UtcNow);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ca.Dispose();
        _key.Dispose();
        Directory.Delete(_data, recursive: true);
    }

    [Benchmark(Description = "ECDSA P-256 sign (floor)")]
    public byte[] EcdsaSign() => _key.SignHash(_hash);

    [Benchmark(Description = "ECDSA P-256 verify (floor)")]
    public bool EcdsaVerify() => _key.VerifyHash(_hash, _signature);

    [Benchmark(Description = "CsrInspector.TryInspect")]
    public bool InspectCsr() => CsrInspector.TryInspect(_csr, out _, out _);

    // What the sign endpoint uses of the answer: the PEM and the fields (Leaf, loaded on first use, is not asked for).
    [Benchmark(Description = "CertificateAuthority.Issue")]
    public string Issue() => _ca.Issue(_id, _inspected.PublicKey).ChainPem;

    [Benchmark(Description = "CertificateRequest.Create (before: what Issue signed with, the certificate loaded)")]
    public int CreateLoaded()
    {
        var request = new CertificateRequest(new X500DistinguishedName("O=MeshKit, OU=default, CN=orders"), _inspected.PublicKey, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(_ca.ActiveSigner.Certificate.SubjectName, X509SignatureGenerator.CreateForECDsa((ECDsa)_ca.ActiveSigner.Key), now, now.AddHours(1), [1, 2, 3, 4]);
        return certificate.RawData.Length;
    }

    [Benchmark(Description = "sign answer to JSON")]
    public byte[] AnswerJson() => JsonSerializer.SerializeToUtf8Bytes(_answer);
}
