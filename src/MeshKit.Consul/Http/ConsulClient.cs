using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul;

/// <summary>
/// A small typed client over Consul's HTTP API: agent service registration and TTL checks, health and catalog reads,
/// KV with check-and-set, and <see cref="ConsulBlockingQuery{T}"/> factories for watching. Thread-safe; use one per
/// process. Failures surface as <see cref="ConsulException"/>; the ACL token is sent as <c>X-Consul-Token</c> on every
/// request and never logged.
/// </summary>
public sealed partial class ConsulClient : IDisposable
{
    private const string TokenHeader = "X-Consul-Token";
    private const int MaxReasonLength = 256;

    private readonly HttpClient _http;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly string? _datacenter;

    /// <summary>Initializes a new instance.</summary>
    /// <param name="options">The Consul settings; validated here with <see cref="ConsulOptionsValidator"/>.</param>
    /// <param name="loggerFactory">Creates the loggers of the client and of its blocking queries.</param>
    /// <param name="timeProvider">The clock for rate limits, back-off and timestamps; the system clock by default.</param>
    /// <exception cref="OptionsValidationException">The settings are invalid, or a TLS file cannot be loaded.</exception>
    public ConsulClient(IOptions<ConsulOptions> options, ILoggerFactory loggerFactory, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var settings = options.Value;
        var validation = new ConsulOptionsValidator().Validate(Options.DefaultName, settings);
        if (validation.Failed)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(ConsulOptions), validation.Failures);
        }

        Settings = settings;
        TimeProvider = timeProvider ?? TimeProvider.System;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<ConsulClient>();
        _datacenter = string.IsNullOrEmpty(settings.Datacenter) ? null : settings.Datacenter;

        var address = settings.Address.AbsoluteUri;
        _http = new HttpClient(ConsulHttpHandler.Create(settings), disposeHandler: true)
        {
            BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/"),
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = 64 * 1024 * 1024,
        };
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("MeshKit", UserAgentVersion));
        if (!string.IsNullOrEmpty(settings.Token))
        {
            _http.DefaultRequestHeaders.TryAddWithoutValidation(TokenHeader, settings.Token);
        }
    }

    /// <summary>Gets the agent address requests go to.</summary>
    public Uri Address => _http.BaseAddress!;

    internal ConsulOptions Settings { get; }

    internal TimeProvider TimeProvider { get; }

    private static string UserAgentVersion { get; } =
        typeof(ConsulClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Registers a service instance with the local agent (<c>PUT /v1/agent/service/register</c>).</summary>
    /// <param name="registration">The instance, its tags, metadata and TTL check.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has accepted the registration.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the registration.</exception>
    public async Task RegisterServiceAsync(ConsulServiceRegistration registration, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registration);
        registration.Validate();
        AgentCheckBody? check = null;
        if (registration.Check is { } ttl)
        {
            check = new AgentCheckBody
            {
                Id = registration.CheckId,
                Name = ttl.Name ?? "MeshKit TTL",
                Ttl = ConsulWire.FormatDuration(ttl.Ttl),
                DeregisterCriticalServiceAfter = ttl.DeregisterCriticalServiceAfter > TimeSpan.Zero ? ConsulWire.FormatDuration(ttl.DeregisterCriticalServiceAfter) : null,
                Status = ConsulWire.FormatStatus(ttl.InitialStatus),
                Notes = ttl.Notes,
            };
        }

        var body = new AgentServiceRegistrationBody
        {
            Id = registration.Id,
            Name = registration.Name,
            Tags = registration.Tags,
            Address = string.IsNullOrEmpty(registration.Address) ? null : registration.Address,
            Port = registration.Port,
            Meta = registration.Meta,
            Check = check,
            Weights = registration.Weights,
        };
        using var content = JsonBody(body, ConsulJsonContext.Default.AgentServiceRegistrationBody);
        await SendAsync(HttpMethod.Put, "v1/agent/service/register", null, content, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes a service instance and its checks from the local agent (<c>PUT /v1/agent/service/deregister/&lt;id&gt;</c>).</summary>
    /// <param name="serviceId">The instance ID.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has removed the instance.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or does not know the instance (404).</exception>
    public async Task DeregisterServiceAsync(string serviceId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceId);
        await SendAsync(HttpMethod.Put, "v1/agent/service/deregister/" + ConsulWire.Segment(serviceId), null, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Marks a TTL check passing and resets its TTL (<c>PUT /v1/agent/check/pass/&lt;id&gt;</c>).</summary>
    /// <param name="checkId">The check ID.</param>
    /// <param name="note">Text to show as the check's output.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has recorded the status.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or does not know the check.</exception>
    public Task PassCheckAsync(string checkId, string? note = null, CancellationToken cancellationToken = default) =>
        SetCheckAsync("pass", checkId, note, cancellationToken);

    /// <summary>Marks a TTL check warning and resets its TTL (<c>PUT /v1/agent/check/warn/&lt;id&gt;</c>).</summary>
    /// <param name="checkId">The check ID.</param>
    /// <param name="note">Text to show as the check's output.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has recorded the status.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or does not know the check.</exception>
    public Task WarnCheckAsync(string checkId, string? note = null, CancellationToken cancellationToken = default) =>
        SetCheckAsync("warn", checkId, note, cancellationToken);

    /// <summary>Marks a TTL check critical and resets its TTL (<c>PUT /v1/agent/check/fail/&lt;id&gt;</c>).</summary>
    /// <param name="checkId">The check ID.</param>
    /// <param name="note">Text to show as the check's output.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has recorded the status.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or does not know the check.</exception>
    public Task FailCheckAsync(string checkId, string? note = null, CancellationToken cancellationToken = default) =>
        SetCheckAsync("fail", checkId, note, cancellationToken);

    /// <summary>Sets a TTL check's status and output and resets its TTL (<c>PUT /v1/agent/check/update/&lt;id&gt;</c>).</summary>
    /// <param name="checkId">The check ID.</param>
    /// <param name="status">The new status.</param>
    /// <param name="output">Text to show as the check's output (at most 4 kB are kept by Consul).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Completes when the agent has recorded the status.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or does not know the check.</exception>
    public async Task UpdateCheckAsync(string checkId, ConsulCheckStatus status, string? output = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkId);
        using var content = JsonBody(new CheckUpdateBody { Status = ConsulWire.FormatStatus(status), Output = output }, ConsulJsonContext.Default.CheckUpdateBody);
        await SendAsync(HttpMethod.Put, "v1/agent/check/update/" + ConsulWire.Segment(checkId), null, content, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the instances of a service with their checks (<c>GET /v1/health/service/&lt;name&gt;</c>).</summary>
    /// <param name="service">The service name.</param>
    /// <param name="query">Passing only, filter, tag and datacenter; <see cref="ConsulHealthQuery.Passing"/> by default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The instances (empty when there are none) and the answer's index.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the query, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<IReadOnlyList<ConsulServiceEntry>>> GetHealthServiceAsync(string service, ConsulHealthQuery? query = null, CancellationToken cancellationToken = default)
    {
        var (path, queryString) = HealthServiceRequest(service, query);
        var response = await SendAsync(HttpMethod.Get, path, queryString, null, cancellationToken).ConfigureAwait(false);
        return Result(ParseHealth(response), response);
    }

    /// <summary>Lists the services of a datacenter with their tags (<c>GET /v1/catalog/services</c>).</summary>
    /// <param name="datacenter">The datacenter to ask; <see cref="ConsulOptions.Datacenter"/> by default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Service names and the union of their instances' tags.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the query, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<IReadOnlyDictionary<string, IReadOnlyList<string>>>> GetCatalogServicesAsync(string? datacenter = null, CancellationToken cancellationToken = default)
    {
        var response = await SendAsync(HttpMethod.Get, "v1/catalog/services", ConsulWire.Query(("dc", datacenter ?? _datacenter)), null, cancellationToken).ConfigureAwait(false);
        return Result(ParseCatalog(response), response);
    }

    /// <summary>Reads one key (<c>GET /v1/kv/&lt;key&gt;</c>).</summary>
    /// <param name="key">The key.</param>
    /// <param name="datacenter">The datacenter to ask; <see cref="ConsulOptions.Datacenter"/> by default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The key, or a <see langword="null"/> value when it does not exist; with the answer's index.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the read, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<ConsulKeyValue?>> GetKeyAsync(string key, string? datacenter = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var response = await SendAsync(HttpMethod.Get, "v1/kv/" + ConsulWire.KeyPath(key), ConsulWire.Query(("dc", datacenter ?? _datacenter)), null, cancellationToken, notFoundIsAnswer: true).ConfigureAwait(false);
        var list = ParseKeys(response);
        ConsulKeyValue? found = null;
        foreach (var pair in list)
        {
            if (pair.Key == key)
            {
                found = pair;
                break;
            }
        }

        return Result(found, response);
    }

    /// <summary>Reads every key under a prefix (<c>GET /v1/kv/&lt;prefix&gt;?recurse</c>).</summary>
    /// <param name="prefix">The prefix, for example <c>mesh/policy/</c>.</param>
    /// <param name="datacenter">The datacenter to ask; <see cref="ConsulOptions.Datacenter"/> by default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The keys (empty when there are none) and the answer's index.</returns>
    /// <exception cref="ConsulException">The agent could not be reached, refused the read, or answered malformed JSON.</exception>
    public async Task<ConsulQueryResult<IReadOnlyList<ConsulKeyValue>>> ListKeysAsync(string prefix, string? datacenter = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var response = await SendAsync(HttpMethod.Get, "v1/kv/" + ConsulWire.KeyPath(prefix), ConsulWire.Query(("recurse", string.Empty), ("dc", datacenter ?? _datacenter)), null, cancellationToken, notFoundIsAnswer: true).ConfigureAwait(false);
        return Result(ParseKeys(response), response);
    }

    /// <summary>Writes a key (<c>PUT /v1/kv/&lt;key&gt;</c>), optionally only if it is unchanged (check-and-set).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <param name="cas">
    /// Write only if the key's <see cref="ConsulKeyValue.ModifyIndex"/> is this value; 0 writes only if the key does not
    /// exist. <see langword="null"/> writes unconditionally.
    /// </param>
    /// <param name="flags">Opaque flags to store with the key.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when written; <see langword="false"/> when the check-and-set failed.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the write.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ in the type of the required value (bytes or text), so no call is ambiguous.")]
    public async Task<bool> PutKeyAsync(string key, ReadOnlyMemory<byte> value, ulong? cas = null, ulong? flags = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        using var content = new ReadOnlyMemoryContent(value);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var query = ConsulWire.Query(("cas", ConsulWire.Number(cas)), ("flags", ConsulWire.Number(flags)), ("dc", _datacenter));
        var response = await SendAsync(HttpMethod.Put, "v1/kv/" + ConsulWire.KeyPath(key), query, content, cancellationToken).ConfigureAwait(false);
        return ParseBool(response);
    }

    /// <summary>Writes a key as UTF-8 text (<c>PUT /v1/kv/&lt;key&gt;</c>), optionally only if it is unchanged (check-and-set).</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value, stored as UTF-8.</param>
    /// <param name="cas">Write only if the key's modify index is this value; 0 only if the key does not exist; <see langword="null"/> always.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when written; <see langword="false"/> when the check-and-set failed.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the write.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "The overloads differ in the type of the required value (bytes or text), so no call is ambiguous.")]
    public Task<bool> PutKeyAsync(string key, string value, ulong? cas = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(value);
        return PutKeyAsync(key, Encoding.UTF8.GetBytes(value), cas, null, cancellationToken);
    }

    /// <summary>Deletes a key (<c>DELETE /v1/kv/&lt;key&gt;</c>), optionally only if it is unchanged (check-and-set).</summary>
    /// <param name="key">The key.</param>
    /// <param name="cas">Delete only if the key's modify index is this value; <see langword="null"/> deletes unconditionally.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when deleted (or already absent without <paramref name="cas"/>); <see langword="false"/> when the check-and-set failed.</returns>
    /// <exception cref="ConsulException">The agent could not be reached or refused the delete.</exception>
    public async Task<bool> DeleteKeyAsync(string key, ulong? cas = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var query = ConsulWire.Query(("cas", ConsulWire.Number(cas)), ("dc", _datacenter));
        var response = await SendAsync(HttpMethod.Delete, "v1/kv/" + ConsulWire.KeyPath(key), query, null, cancellationToken).ConfigureAwait(false);
        return ParseBool(response);
    }

    /// <summary>Creates a blocking query on the instances of a service; nothing is sent until it is watched.</summary>
    /// <param name="service">The service name.</param>
    /// <param name="query">Passing only, filter, tag and datacenter; <see cref="ConsulHealthQuery.Passing"/> by default.</param>
    /// <returns>A query to watch with <see cref="ConsulBlockingQuery{T}.WatchAsync"/>.</returns>
    public ConsulBlockingQuery<IReadOnlyList<ConsulServiceEntry>> CreateHealthServiceQuery(string service, ConsulHealthQuery? query = null)
    {
        var (path, queryString) = HealthServiceRequest(service, query);
        return new ConsulBlockingQuery<IReadOnlyList<ConsulServiceEntry>>(this, path, queryString, ParseHealth, notFoundIsAnswer: false, _loggerFactory.CreateLogger<ConsulBlockingQuery<IReadOnlyList<ConsulServiceEntry>>>());
    }

    /// <summary>Creates a blocking query on a key, or on every key under a prefix; nothing is sent until it is watched.</summary>
    /// <param name="keyOrPrefix">The key, or the prefix when <paramref name="recurse"/> is set.</param>
    /// <param name="recurse">Watch every key under the prefix.</param>
    /// <param name="datacenter">The datacenter to ask; <see cref="ConsulOptions.Datacenter"/> by default.</param>
    /// <returns>A query whose value is the keys found (empty while none exists).</returns>
    public ConsulBlockingQuery<IReadOnlyList<ConsulKeyValue>> CreateKeyValueQuery(string keyOrPrefix, bool recurse = false, string? datacenter = null)
    {
        ArgumentNullException.ThrowIfNull(keyOrPrefix);
        var query = ConsulWire.Query(("recurse", recurse ? string.Empty : null), ("dc", datacenter ?? _datacenter));
        return new ConsulBlockingQuery<IReadOnlyList<ConsulKeyValue>>(this, "v1/kv/" + ConsulWire.KeyPath(keyOrPrefix), query, ParseKeys, notFoundIsAnswer: true, _loggerFactory.CreateLogger<ConsulBlockingQuery<IReadOnlyList<ConsulKeyValue>>>());
    }

    /// <summary>Creates a blocking query on the catalog's service list; nothing is sent until it is watched.</summary>
    /// <param name="datacenter">The datacenter to ask; <see cref="ConsulOptions.Datacenter"/> by default.</param>
    /// <returns>A query whose value maps service names to their tags.</returns>
    public ConsulBlockingQuery<IReadOnlyDictionary<string, IReadOnlyList<string>>> CreateCatalogServicesQuery(string? datacenter = null) =>
        new(this, "v1/catalog/services", ConsulWire.Query(("dc", datacenter ?? _datacenter)), ParseCatalog, notFoundIsAnswer: false, _loggerFactory.CreateLogger<ConsulBlockingQuery<IReadOnlyDictionary<string, IReadOnlyList<string>>>>());

    /// <summary>Closes the client's connections.</summary>
    public void Dispose() => _http.Dispose();

    /// <summary>Sends one read of a blocking query: with <c>index</c> and <c>wait</c> once an index is known.</summary>
    internal Task<ConsulResponse> QueryAsync(string path, string? query, ulong index, bool notFoundIsAnswer, CancellationToken cancellationToken)
    {
        if (index == 0)
        {
            return SendAsync(HttpMethod.Get, path, query, null, cancellationToken, notFoundIsAnswer);
        }

        var wait = Settings.Wait;
        var blocking = "index=" + index.ToString(CultureInfo.InvariantCulture) + "&wait=" + ConsulWire.FormatDuration(wait);

        // Consul adds up to wait/16 of jitter to the wait; the timeout leaves that plus a normal request's time.
        var timeout = wait + (wait / 16) + Settings.RequestTimeout;
        return SendAsync(HttpMethod.Get, path, query is null ? blocking : query + "&" + blocking, null, cancellationToken, notFoundIsAnswer, timeout);
    }

    internal static string Endpoint(HttpMethod method, string path) => method.Method + " /" + path;

    internal static IReadOnlyList<ConsulServiceEntry> ParseHealth(ConsulResponse response) =>
        Parse(response, ConsulJsonContext.Default.ListConsulServiceEntry) ?? [];

    internal static IReadOnlyList<ConsulKeyValue> ParseKeys(ConsulResponse response) =>
        response.StatusCode == HttpStatusCode.NotFound ? [] : Parse(response, ConsulJsonContext.Default.ListConsulKeyValue) ?? [];

    internal static IReadOnlyDictionary<string, IReadOnlyList<string>> ParseCatalog(ConsulResponse response)
    {
        var raw = Parse(response, ConsulJsonContext.Default.DictionaryStringListString);
        var services = new Dictionary<string, IReadOnlyList<string>>(raw?.Count ?? 0, StringComparer.Ordinal);
        if (raw is not null)
        {
            foreach (var (name, tags) in raw)
            {
                services[name] = tags ?? [];
            }
        }

        return services;
    }

    private static bool ParseBool(ConsulResponse response) => Parse(response, ConsulJsonContext.Default.Boolean);

    private static T? Parse<T>(ConsulResponse response, JsonTypeInfo<T> type)
    {
        try
        {
            return JsonSerializer.Deserialize(response.Body, type);
        }
        catch (JsonException ex)
        {
            throw new ConsulException(
                response.Endpoint,
                ConsulErrorKind.MalformedResponse,
                response.StatusCode,
                $"Consul {response.Endpoint} answered {(int)response.StatusCode} with a body that is not the documented JSON ({ex.Message}).",
                ex);
        }
    }

    private static ConsulQueryResult<T> Result<T>(T value, ConsulResponse response) => new(value, response.Meta, response.ReceivedAt);

    private static ByteArrayContent JsonBody<T>(T body, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(body, type));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    private (string Path, string? Query) HealthServiceRequest(string service, ConsulHealthQuery? query)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        query ??= ConsulHealthQuery.Passing;
        return ("v1/health/service/" + ConsulWire.Segment(service), ConsulWire.Query(
            ("passing", query.PassingOnly ? string.Empty : null),
            ("tag", query.Tag),
            ("filter", query.Filter),
            ("dc", query.Datacenter ?? _datacenter)));
    }

    private async Task SetCheckAsync(string verb, string checkId, string? note, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkId);
        await SendAsync(HttpMethod.Put, "v1/agent/check/" + verb + "/" + ConsulWire.Segment(checkId), ConsulWire.Query(("note", note)), null, cancellationToken).ConfigureAwait(false);
    }

    private async Task<ConsulResponse> SendAsync(
        HttpMethod method,
        string path,
        string? query,
        HttpContent? content,
        CancellationToken cancellationToken,
        bool notFoundIsAnswer = false,
        TimeSpan? timeout = null)
    {
        var endpoint = Endpoint(method, path);
        var limit = timeout ?? Settings.RequestTimeout;
        using var request = new HttpRequestMessage(method, new Uri(query is null ? path : path + "?" + query, UriKind.Relative)) { Content = content };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, deadline.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsByteArrayAsync(deadline.Token).ConfigureAwait(false);
            var meta = ReadMeta(response);
            LogAnswered(_logger, endpoint, (int)response.StatusCode, Stopwatch.GetElapsedTime(started).TotalMilliseconds, meta.Index);
            if (!response.IsSuccessStatusCode && !(notFoundIsAnswer && response.StatusCode == HttpStatusCode.NotFound))
            {
                throw new ConsulException(
                    endpoint,
                    ConsulErrorKind.Status,
                    response.StatusCode,
                    $"Consul {endpoint} answered {(int)response.StatusCode} {response.ReasonPhrase}: {Reason(body)}");
            }

            return new ConsulResponse(endpoint, response.StatusCode, body, meta, TimeProvider.GetUtcNow());
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ConsulException(endpoint, ConsulErrorKind.Timeout, null, $"Consul {endpoint} did not answer within {limit.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s.", ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new ConsulException(endpoint, ConsulErrorKind.Unreachable, null, $"Consul {endpoint} could not be reached at {Address.GetLeftPart(UriPartial.Authority)}: {ex.Message}", ex);
        }
    }

    private static ConsulQueryMeta ReadMeta(HttpResponseMessage response)
    {
        var headers = response.Headers;
        ulong index = 0;
        if (headers.TryGetValues("X-Consul-Index", out var indexValues))
        {
            foreach (var value in indexValues)
            {
                _ = ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out index);
                break;
            }
        }

        var knownLeader = false;
        if (headers.TryGetValues("X-Consul-KnownLeader", out var leaderValues))
        {
            foreach (var value in leaderValues)
            {
                knownLeader = string.Equals(value, "true", StringComparison.OrdinalIgnoreCase);
                break;
            }
        }

        var lastContact = TimeSpan.Zero;
        if (headers.TryGetValues("X-Consul-LastContact", out var contactValues))
        {
            foreach (var value in contactValues)
            {
                if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
                {
                    lastContact = TimeSpan.FromMilliseconds(ms);
                }

                break;
            }
        }

        return new ConsulQueryMeta(index, knownLeader, lastContact);
    }

    /// <summary>Consul's error bodies are short plain text ("Permission denied", "Unknown service ID"); keep them readable and short.</summary>
    private static string Reason(byte[] body)
    {
        if (body.Length == 0)
        {
            return "(no body)";
        }

        var text = Encoding.UTF8.GetString(body, 0, Math.Min(body.Length, MaxReasonLength));
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            builder.Append(char.IsControl(c) ? ' ' : c);
        }

        var reason = builder.ToString().Trim();
        return body.Length > MaxReasonLength ? reason + "…" : reason;
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Debug, Message = "Consul {Endpoint} answered {StatusCode} in {ElapsedMs:0.#} ms (index {Index}).")]
    private static partial void LogAnswered(ILogger logger, string endpoint, int statusCode, double elapsedMs, ulong index);
}

/// <summary>An answer from Consul, before its body is parsed.</summary>
internal sealed record ConsulResponse(string Endpoint, HttpStatusCode StatusCode, byte[] Body, ConsulQueryMeta Meta, DateTimeOffset ReceivedAt);
