using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using MeshKit.Identity;

namespace MeshKit.Cli.ControlPlane;

/// <summary>
/// meshctl's client of the control service's admin API. It trusts only the given trust bundle and only the control
/// service's identity (<c>spiffe://&lt;td&gt;/ns/mesh-system/svc/control-plane</c>), as workloads do, and maps every failure to an
/// exit code and a message that never contains the admin token.
/// </summary>
internal sealed class ControlPlaneApi : IDisposable
{
    private const string ControlPlaneService = "control-plane";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly HttpClient _http;
    private readonly ControlPlaneSettings _settings;
    private string? _refusal;
    private int _current;

    public ControlPlaneApi(ControlPlaneSettings settings, TimeSpan? timeout = null)
    {
        _settings = settings;
        if (settings.Bundle is null)
        {
            throw new MeshctlException(
                ExitCodes.Usage,
                $"No trust bundle to trust the control service at {settings.Address} with: give --trust-bundle <trust-bundle.pem> (the file in the control service's data folder) or set $MESHCTL_TRUST_BUNDLE.");
        }

        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = ValidateServer },
        };
        _http = new HttpClient(handler) { Timeout = timeout ?? TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("meshctl", typeof(ControlPlaneApi).Assembly.GetName().Version?.ToString(3) ?? "0"));
    }

    /// <summary>Gets the replica in use: the first address, or the one meshctl moved to when an earlier one could not be reached.</summary>
    public Uri Address => _settings.AllAddresses[_current];

    public Task<WorkloadList> GetWorkloadsAsync(CancellationToken cancellationToken) =>
        SendAsync<WorkloadList>(HttpMethod.Get, "v1/workloads", null, null, cancellationToken);

    public Task<PolicyIndex> GetPolicyIndexAsync(CancellationToken cancellationToken) =>
        SendAsync<PolicyIndex>(HttpMethod.Get, "v1/policy", null, null, cancellationToken);

    /// <summary>Gets a service's central document, or <see langword="null"/> when none is stored.</summary>
    public async Task<StoredPolicy?> GetPolicyAsync(string service, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(HttpMethod.Get, $"v1/policy/{Uri.EscapeDataString(service)}", null, null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await ThrowIfFailedAsync(response, cancellationToken).ConfigureAwait(false);
        var json = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return new StoredPolicy(json, response.Headers.ETag?.Tag.Trim('"'));
    }

    public Task<PolicyDiffResult> DiffPolicyAsync(string service, string json, CancellationToken cancellationToken) =>
        SendAsync<PolicyDiffResult>(HttpMethod.Post, $"v1/policy/{Uri.EscapeDataString(service)}/diff", json, null, cancellationToken);

    public Task<PolicyPutResult> PutPolicyAsync(string service, string json, string? ifMatch, CancellationToken cancellationToken) =>
        SendAsync<PolicyPutResult>(HttpMethod.Put, $"v1/policy/{Uri.EscapeDataString(service)}", json, ifMatch, cancellationToken);

    public Task<CaRoots> GetRootsAsync(CancellationToken cancellationToken) =>
        SendAsync<CaRoots>(HttpMethod.Get, "v1/ca/roots", null, null, cancellationToken);

    public Task<CaRoots> AddRootAsync(CancellationToken cancellationToken) =>
        SendAsync<CaRoots>(HttpMethod.Post, "v1/ca/roots", null, null, cancellationToken);

    public Task<CaRoots> ActivateRootAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<CaRoots>(HttpMethod.Post, $"v1/ca/roots/{Uri.EscapeDataString(id)}/activate", null, null, cancellationToken);

    public Task<CaRoots> RemoveRootAsync(string id, CancellationToken cancellationToken) =>
        SendAsync<CaRoots>(HttpMethod.Delete, $"v1/ca/roots/{Uri.EscapeDataString(id)}", null, null, cancellationToken);

    /// <summary>
    /// <c>POST /v1/ca/reload</c>: the replica reads its CA files again. A refusal of the change itself (400, 409 or 503 with a
    /// <c>ca-</c> reason) is returned, not thrown, so that the caller can report it per replica; other failures throw.
    /// </summary>
    public async Task<CaReloadAnswer> ReloadCaAsync(CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(HttpMethod.Post, "v1/ca/reload", null, null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Conflict or HttpStatusCode.ServiceUnavailable)
        {
            var (reason, detail, _) = await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
            if (reason is not null && reason.StartsWith("ca-", StringComparison.Ordinal))
            {
                return new CaReloadAnswer(null, (int)response.StatusCode, reason, detail);
            }
        }

        await ThrowIfFailedAsync(response, cancellationToken).ConfigureAwait(false);
        return new CaReloadAnswer(await ReadJsonAsync<CaRoots>(response, cancellationToken).ConfigureAwait(false), (int)response.StatusCode, null, null);
    }

    /// <summary><c>GET /v1/ca/replicas</c>, as the control service wrote it (for <c>--json</c>, unchanged).</summary>
    public Task<JsonElement> GetCaReplicasAsync(CancellationToken cancellationToken) =>
        SendAsync<JsonElement>(HttpMethod.Get, "v1/ca/replicas", null, null, cancellationToken);

    /// <summary>Reads an answer of the control service as <typeparamref name="T"/>, or fails naming the call.</summary>
    public static T Read<T>(JsonElement answer, string call)
    {
        try
        {
            return answer.Deserialize<T>(Json) ?? throw new JsonException("The body is empty.");
        }
        catch (JsonException ex)
        {
            throw new MeshctlException(ExitCodes.Unexpected, $"The control service's answer to {call} could not be read: {ex.Message}", ex);
        }
    }

    public Task<CanaryList> GetCanariesAsync(CancellationToken cancellationToken) =>
        SendAsync<CanaryList>(HttpMethod.Get, "v1/canaries", null, null, cancellationToken);

    /// <summary>An operator's action on a canary named <c>service/destination/route</c>.</summary>
    public Task<CanaryView> CanaryActionAsync(string canary, string action, CancellationToken cancellationToken) =>
        SendAsync<CanaryView>(HttpMethod.Post, $"v1/canaries/{string.Join('/', canary.Split('/').Select(Uri.EscapeDataString))}/{action}", null, null, cancellationToken);

    public void Dispose() => _http.Dispose();

    private async Task<T> SendAsync<T>(HttpMethod method, string path, string? body, string? ifMatch, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(method, path, body, ifMatch, cancellationToken).ConfigureAwait(false);
        await ThrowIfFailedAsync(response, cancellationToken).ConfigureAwait(false);
        return await ReadJsonAsync<T>(response, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<T> ReadJsonAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken).ConfigureAwait(false)
                ?? throw new JsonException("The body is empty.");
        }
        catch (JsonException ex)
        {
            throw new MeshctlException(ExitCodes.Unexpected, $"The control service's answer to {response.RequestMessage?.Method} /{response.RequestMessage?.RequestUri?.AbsolutePath.TrimStart('/')} could not be read: {ex.Message}", ex);
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, string? body, string? ifMatch, CancellationToken cancellationToken)
    {
        if (_settings.AdminToken is null)
        {
            throw new MeshctlException(
                ExitCodes.Usage,
                "No admin token: set $MESHCTL_ADMIN_TOKEN, or give --admin-token-file <file> (the control service writes 'admin-token' in its data folder).");
        }

        // Replicas in order from the one in use; the next only when this one cannot be reached (nothing was sent, so a
        // write is never made twice). A replica that is not trusted is never passed over: that is a refusal, not an outage.
        var addresses = _settings.AllAddresses;
        var unreachable = new List<string>();
        for (var tried = 0; ; tried++)
        {
            var index = (_current + tried) % addresses.Count;
            using var request = new HttpRequestMessage(method, new Uri(addresses[index], path));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _settings.AdminToken);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            if (ifMatch is not null)
            {
                request.Headers.TryAddWithoutValidation("If-Match", $"\"{ifMatch.Trim('"')}\"");
            }

            try
            {
                var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                _current = index;
                return response;
            }
            catch (HttpRequestException ex) when (ex.GetBaseException() is AuthenticationException || _refusal is not null)
            {
                throw new MeshctlException(
                    ExitCodes.Unreachable,
                    $"The control service at {addresses[index]} was not trusted: {_refusal ?? ex.GetBaseException().Message} (trust bundle: {_settings.BundleSource}).",
                    ex);
            }
            catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ConnectionError && tried + 1 < addresses.Count)
            {
                unreachable.Add($"{addresses[index]} ({ex.GetBaseException().Message})");
            }
            catch (HttpRequestException ex)
            {
                var earlier = unreachable.Count == 0 ? string.Empty : $" Tried before it: {string.Join("; ", unreachable)}.";
                throw new MeshctlException(ExitCodes.Unreachable, $"The control service at {addresses[index]} could not be reached: {ex.GetBaseException().Message}{earlier}", ex);
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new MeshctlException(ExitCodes.Unreachable, $"The control service at {addresses[index]} did not answer within {_http.Timeout.TotalSeconds:0} s.", ex);
            }
        }
    }

    private async Task ThrowIfFailedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var (reason, detail, errors) = await ReadProblemAsync(response, cancellationToken).ConfigureAwait(false);
        var where = $"{response.RequestMessage?.Method} /{response.RequestMessage?.RequestUri?.AbsolutePath.TrimStart('/')}";
        throw response.StatusCode switch
        {
            HttpStatusCode.BadRequest when reason == "policy-invalid" => new PolicyRejectedException(errors, detail),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new MeshctlException(
                ExitCodes.Unauthorized,
                $"The control service refused the admin token from {_settings.AdminTokenSource} ({(int)response.StatusCode} {reason}): {detail}"),
            HttpStatusCode.Conflict => new MeshctlException(ExitCodes.Conflict, $"{where}: {(int)response.StatusCode} {reason}: {detail}"),
            HttpStatusCode.BadRequest or HttpStatusCode.NotFound or HttpStatusCode.RequestEntityTooLarge => new MeshctlException(ExitCodes.Usage, $"{where}: {(int)response.StatusCode} {reason}: {detail}"),
            _ => new MeshctlException(ExitCodes.Unexpected, $"{where}: the control service answered {(int)response.StatusCode} {reason}: {detail}"),
        };
    }

    private static async Task<(string? Reason, string Detail, IReadOnlyList<PolicyErrorView> Errors)> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var detail = response.ReasonPhrase ?? string.Empty;
        string? reason = null;
        var errors = new List<PolicyErrorView>();
        try
        {
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken).ConfigureAwait(false);
            if (problem.ValueKind == JsonValueKind.Object)
            {
                reason = problem.TryGetProperty("reason", out var r) ? r.GetString() : null;
                detail = problem.TryGetProperty("detail", out var d) ? d.GetString() ?? detail : detail;
                if (problem.TryGetProperty("errors", out var list) && list.ValueKind == JsonValueKind.Array)
                {
                    foreach (var error in list.EnumerateArray())
                    {
                        errors.Add(new PolicyErrorView(
                            error.TryGetProperty("path", out var p) ? p.GetString() ?? string.Empty : string.Empty,
                            error.TryGetProperty("message", out var m) ? m.GetString() ?? string.Empty : string.Empty));
                    }
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException)
        {
        }

        return (reason, detail, errors);
    }

    private bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var presented = certificate as X509Certificate2;
        var uris = presented is null ? [] : SubjectAlternativeNames.GetUris(presented);
        var trustDomain = _settings.ResolveTrustDomain()
            ?? (uris.Count == 1 && SpiffeId.TryParse(uris[0], out var claimed) ? claimed.TrustDomain : null);
        if (trustDomain is null)
        {
            _refusal = "its certificate carries no SPIFFE ID and no trust domain is known (give --trust-domain)";
            return false;
        }

        var result = SvidValidator.Validate(presented, chain?.ChainPolicy.ExtraStore, _settings.Bundle!, trustDomain, DateTimeOffset.UtcNow, SvidUsage.Server);
        var expected = SpiffeId.Create(trustDomain, SpiffeId.ReservedNamespace, ControlPlaneService);
        if (!result.IsValid)
        {
            _refusal = $"{result.Rejection}: {result.Detail}";
            return false;
        }

        if (result.SpiffeId != expected)
        {
            _refusal = $"it presented {result.SpiffeId}, not the control service's identity {expected}";
            return false;
        }

        _refusal = null;
        return true;
    }
}
