using MeshKit.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace MeshKit.Policy;

/// <summary>
/// Holds the traffic policy in force as an immutable <see cref="PolicySnapshot"/> and swaps it atomically when the
/// configuration changes. Built on configuration change tokens rather than <c>IOptionsMonitor</c> validation (after an
/// invalid edit <c>IOptionsMonitor.CurrentValue</c> throws on every read). A reload is rejected, and the last good snapshot
/// stays, when a configuration file fails to load (its keys vanish), when the policy section vanishes, or when validation
/// fails; the rejection is logged with every reason and counted.
/// </summary>
internal sealed partial class PolicyWatcher : IDisposable
{
    private const string MeshPath = "Mesh";
    private static readonly string[] PolicyPaths = ["Mesh:Policy", "Mesh:Authorization"];
    private readonly IConfiguration _configuration;
    private readonly MeshMetrics _metrics;
    private readonly ILogger _logger;
    private readonly IDisposable? _subscription;
    private readonly Lock _gate = new();
    private volatile PolicySnapshot _current;
    private bool[] _present;
    private string? _centralJson;
    private PolicyError? _loadFailure;

    /// <summary>Initializes the watcher and loads the policy; an invalid policy at start throws.</summary>
    /// <param name="configuration">The app's configuration.</param>
    /// <param name="loadFailures">Reports configuration files that failed to load.</param>
    /// <param name="metrics">MeshKit's metrics.</param>
    /// <param name="logger">The logger.</param>
    /// <exception cref="PolicyValidationException">The policy at start is not valid.</exception>
    public PolicyWatcher(IConfiguration configuration, ConfigurationLoadFailures loadFailures, MeshMetrics metrics, ILogger<PolicyWatcher> logger)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(loadFailures);
        _configuration = configuration;
        _metrics = metrics;
        _logger = logger;
        var result = PolicyComposer.Compose(configuration, centralJson: null);
        if (!result.IsValid)
        {
            throw new PolicyValidationException(result.Errors);
        }

        _current = result.Snapshot!;
        _present = Present(configuration);
        loadFailures.Failed += OnLoadFailure;
        metrics.Meter.CreateObservableGauge(
            "mesh.policy.version",
            () => new System.Diagnostics.Metrics.Measurement<int>(1, new KeyValuePair<string, object?>("mesh.policy.version", _current.Version)),
            "{policy}",
            "Always 1; the attribute mesh.policy.version is the policy in force.");
        _subscription = ChangeToken.OnChange(configuration.GetReloadToken, Reload);
        LogLoaded(_logger, _current.Version, _current.Destinations.Count);
    }

    /// <summary>Raised after a new snapshot took effect.</summary>
    public event Action<PolicySnapshot>? Changed;

    /// <summary>Gets the policy in force. A single volatile read: safe and cheap on the request path.</summary>
    public PolicySnapshot Current => _current;

    /// <summary>Gets the reasons the last rejected reload was rejected, if the last reload was rejected.</summary>
    public IReadOnlyList<PolicyError> LastRejection { get; private set; } = [];

    /// <summary>Gets the version of the central policy last received from the control service, if any.</summary>
    public string? CentralVersion { get; private set; }

    /// <summary>
    /// Gets the control service's store revision of the central policy held (or of its deletion): a deletion drops the
    /// central policy only when its revision is above this one.
    /// </summary>
    public ulong CentralRevision { get; private set; }

    /// <summary>
    /// Applies the central policy received on the control channel, merged with the local one (see docs/live-policy.md):
    /// validated like a local reload, and rejected (keeping the policy in force) when the merge does not validate.
    /// </summary>
    /// <param name="json">The central document (<c>{ "Policy": ..., "Authorization": ... }</c>), or <see langword="null"/> when it was deleted.</param>
    /// <param name="version">Its version.</param>
    /// <param name="revision">The store revision of the document or of its deletion.</param>
    internal void ApplyCentral(string? json, string? version, ulong revision)
    {
        PolicySnapshot? next = null;
        List<PolicyError> reasons = [];
        lock (_gate)
        {
            // One path from JSON to policy: the composer parses the document (a syntax error is one reason) and merges it.
            var result = PolicyComposer.Compose(_configuration, json);
            if (result.IsValid)
            {
                _centralJson = json;
                next = result.Snapshot;
            }
            else
            {
                reasons.AddRange(result.Errors);
            }

            // Recorded after the policy took effect, so whoever sees the new central version sees its policy too.
            CentralRevision = revision;
            if (next is not null && next.Version == _current.Version)
            {
                CentralVersion = version;
                return;
            }

            if (next is not null)
            {
                _current = next;
                LastRejection = [];
            }
            else
            {
                LastRejection = reasons;
            }

            CentralVersion = version;
        }

        if (next is not null)
        {
            LogCentralApplied(_logger, version ?? "none", next.Version);
            _metrics.RecordPolicyReload(success: true);
            Changed?.Invoke(next);
        }
        else
        {
            LogRejected(_logger, _current.Version, reasons.Count, string.Join("; ", reasons));
            _metrics.RecordPolicyReload(success: false);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _subscription?.Dispose();

    private static bool[] Present(IConfiguration configuration) =>
        [.. PolicyPaths.Select(path => configuration.GetSection(path).Exists())];

    private void OnLoadFailure(string source, Exception error)
    {
        // The file's keys vanished, or will on the next reload: whatever configuration shows now is not applied, and the
        // rejection is recorded with its reason at once (without an OnLoadException of the app's own, .NET raises no reload).
        PolicyError[] reasons = [new("(configuration)", $"{source} failed to load: {error.GetBaseException().Message} Its keys vanished, so the reload was not applied.")];
        string version;
        lock (_gate)
        {
            // Kept until a reload is applied: with an OnLoadException of the app's own that ignores the error, .NET raises a
            // reload whose keys have vanished, and that rejection names this cause too.
            _loadFailure = reasons[0];
            LastRejection = reasons;
            version = _current.Version;
        }

        LogRejected(_logger, version, reasons.Length, reasons[0].ToString());
        _metrics.RecordPolicyReload(success: false);
    }

    private void Reload()
    {
        PolicySnapshot? next = null;
        List<PolicyError> reasons = [];
        lock (_gate)
        {
            var present = Present(_configuration);
            for (var i = 0; i < PolicyPaths.Length; i++)
            {
                if (_present[i] && !present[i])
                {
                    reasons.Add(new PolicyError(PolicyPaths[i], "vanished from configuration (a file deleted or emptied?). The reload was not applied; to clear it on purpose, leave the section with at least one setting."));
                }
            }

            if (reasons.Count == 0)
            {
                var result = PolicyComposer.Compose(_configuration, _centralJson);
                if (result.IsValid)
                {
                    next = result.Snapshot!;
                    _present = present;
                    _loadFailure = null;
                }
                else
                {
                    reasons.AddRange(result.Errors);
                }
            }

            if (next is null && _loadFailure is not null)
            {
                reasons.Insert(0, _loadFailure);
            }

            if (next is not null)
            {
                if (next.Version == _current.Version)
                {
                    return;
                }

                _current = next;
                LastRejection = [];
            }
            else
            {
                LastRejection = reasons;
            }
        }

        // The log line first, then the count: whoever sees the count (an alert, a test) finds the line that explains it.
        if (next is not null)
        {
            LogReloaded(_logger, next.Version, next.Destinations.Count);
            _metrics.RecordPolicyReload(success: true);
            Changed?.Invoke(next);
        }
        else
        {
            LogRejected(_logger, _current.Version, reasons.Count, string.Join("; ", reasons));
            _metrics.RecordPolicyReload(success: false);
        }
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Information, Message = "Traffic policy {Version} loaded ({Destinations} destination(s) with their own policy).")]
    private static partial void LogLoaded(ILogger logger, string version, int destinations);

    [LoggerMessage(EventId = 6002, Level = LogLevel.Information, Message = "Traffic policy reloaded: now {Version} ({Destinations} destination(s) with their own policy).")]
    private static partial void LogReloaded(ILogger logger, string version, int destinations);

    [LoggerMessage(EventId = 6004, Level = LogLevel.Information, Message = "Central policy {CentralVersion} applied; the merged policy in force is {Version}.")]
    private static partial void LogCentralApplied(ILogger logger, string centralVersion, string version);

    [LoggerMessage(EventId = 6003, Level = LogLevel.Error, Message = "Rejected a policy reload; policy {Version} stays in force. {Count} reason(s): {Reasons}")]
    private static partial void LogRejected(ILogger logger, string version, int count, string reasons);
}

/// <summary>
/// Learns of configuration files that fail to load on reload, without touching the app's configuration sources (their
/// <c>OnLoadException</c> stays the app's own). For every JSON file source that reloads on change, MeshKit watches the same
/// file and, after the source's reload delay, parses it once more with a private copy of the source. When that parse
/// fails, the failure is reported here, and the policy reload is rejected with its reason.
/// </summary>
/// <remarks>
/// When an app's source has no <c>OnLoadException</c>, .NET itself empties the source's keys, does not raise its reload
/// event, and leaves the exception in the file watcher's task (unobserved: the process carries on). MeshKit's policy in
/// force is an immutable snapshot, so it stays as it was; this class only supplies the reason. Other file formats (XML,
/// INI) are not parsed a second time: a failed load of one of them is rejected when its keys vanish (see
/// <see cref="PolicyWatcher"/>).
/// </remarks>
internal sealed class ConfigurationLoadFailures : IDisposable
{
    private readonly List<IDisposable> _watches = [];

    /// <summary>Initializes the watch of every reloading JSON file source of <paramref name="configuration"/>.</summary>
    /// <param name="configuration">The app's configuration.</param>
    public ConfigurationLoadFailures(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration is IConfigurationRoot root)
        {
            Watch(root);
        }
    }

    /// <summary>Raised with the file's path and the error.</summary>
    public event Action<string, Exception>? Failed;

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_watches)
        {
            foreach (var watch in _watches)
            {
                watch.Dispose();
            }

            _watches.Clear();
        }
    }

    internal void Report(string source, Exception error) => Failed?.Invoke(source, error);

    private void Watch(IConfigurationRoot root)
    {
        foreach (var provider in root.Providers)
        {
            switch (provider)
            {
                case ChainedConfigurationProvider { Configuration: IConfigurationRoot inner }:
                    Watch(inner);
                    break;
                case FileConfigurationProvider { Source: JsonConfigurationSource { ReloadOnChange: true, FileProvider: { } files, Path: { } path } source }:
                    lock (_watches)
                    {
                        _watches.Add(ChangeToken.OnChange(() => files.Watch(path), () => Probe(source, files, path)));
                    }

                    break;
            }
        }
    }

    private void Probe(JsonConfigurationSource source, IFileProvider files, string path)
    {
        // The app's provider reads the file after this delay; read what it reads. This runs on the file watcher's task.
        Thread.Sleep(source.ReloadDelay);
        var copy = new JsonConfigurationSource { FileProvider = files, Path = path, Optional = true, ReloadOnChange = false };
        try
        {
            using var provider = new JsonConfigurationProvider(copy);
            provider.Load();
        }
        catch (Exception error) when (error is InvalidDataException or FormatException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            Report(files.GetFileInfo(path).PhysicalPath ?? path, error);
        }
    }
}
