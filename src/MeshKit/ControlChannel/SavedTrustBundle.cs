using System.Security.Cryptography;
using MeshKit.Hosting;
using MeshKit.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.ControlChannel;

/// <summary>
/// The last trust bundle the control service sent this workload, kept in <c>Mesh:ControlPlane:StateDirectory</c> so that a
/// restart after a CA rotation still trusts the control service (whose certificate may by then chain only to a root that
/// <c>Mesh:ControlPlane:TrustBundlePath</c> does not hold). Every bundle the workload receives (sign answers and the
/// control-channel watch) is written here, owner-only and atomically. A saved file that cannot be used is logged and
/// ignored: the configured file still applies, so a bad state file never stops a workload that would have started
/// without it.
/// </summary>
internal sealed partial class SavedTrustBundle
{
    /// <summary>The name of the file in the state directory.</summary>
    public const string FileName = "trust-bundle.pem";

    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private string? _savedVersion;

    public SavedTrustBundle(IOptions<MeshOptions> options, ILogger<SavedTrustBundle> logger)
    {
        _logger = logger;
        var directory = ResolveDirectory(options.Value);
        FilePath = directory is null ? null : Path.Combine(directory, FileName);
    }

    /// <summary>Gets the path of the saved bundle, or <see langword="null"/> when the state directory is turned off.</summary>
    public string? FilePath { get; }

    /// <summary>
    /// The state directory: <c>Mesh:ControlPlane:StateDirectory</c> as a full path; when unset, a per-user folder keyed by
    /// the workload's identity (<c>&lt;LocalApplicationData&gt;/MeshKit/workloads/&lt;td&gt;/&lt;ns&gt;/&lt;svc&gt;</c>); <see langword="null"/>
    /// when set to an empty value, or when the user has no such folder.
    /// </summary>
    public static string? ResolveDirectory(MeshOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var configured = options.ControlPlane.StateDirectory;
        if (configured is not null)
        {
            return configured.Length == 0 ? null : Path.GetFullPath(configured);
        }

        var root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
        if (string.IsNullOrEmpty(root) || string.IsNullOrEmpty(options.Service.Name))
        {
            return null;
        }

        // Names are validated DNS labels and a trust domain, so they are safe folder names.
        return Path.Combine(root, "MeshKit", "workloads", options.TrustDomain, options.Service.Namespace, options.Service.Name);
    }

    /// <summary>
    /// Reads the saved bundle, or returns <see langword="null"/> when there is none or it cannot be trusted (logged, with why).
    /// </summary>
    public TrustBundle? Load()
    {
        var path = FilePath;
        if (path is null)
        {
            return null;
        }

        try
        {
            if (!File.Exists(path))
            {
                return null;
            }

            // A root planted here would let its holder pose as the control service and collect the join token: only a file
            // that no other user could have written is used.
            if (OwnerOnlyFile.WhyWritableByOthers(path) is { } why)
            {
                LogSavedBundleIgnored(_logger, path, why);
                return null;
            }

            var bundle = TrustBundle.FromPem(File.ReadAllText(path));
            lock (_gate)
            {
                _savedVersion ??= bundle.Version;
            }

            LogLoaded(_logger, bundle.Version, bundle.Roots.Count, path);
            return bundle;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or CryptographicException)
        {
            LogSavedBundleIgnored(_logger, path, ex.Message);
            return null;
        }
    }

    /// <summary>Keeps <paramref name="bundle"/> as the saved bundle (when it differs from the one saved). Never throws: a failure is logged.</summary>
    public void Save(TrustBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var path = FilePath;
        if (path is null)
        {
            return;
        }

        // One writer at a time, so an older bundle can never overwrite a newer one that was saved while it waited.
        lock (_gate)
        {
            if (_savedVersion == bundle.Version)
            {
                return;
            }

            try
            {
                OwnerOnlyFile.WriteAllText(path, bundle.Pem);
                _savedVersion = bundle.Version;
                LogSaved(_logger, bundle.Version, bundle.Roots.Count, path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                LogSaveFailed(_logger, path, ex.Message);
            }
        }
    }

    [LoggerMessage(EventId = 2111, Level = LogLevel.Warning, Message = "The saved trust bundle '{Path}' is ignored ({Reason}); the control service is trusted through Mesh:ControlPlane:TrustBundlePath alone until it sends a bundle, which replaces the file.")]
    private static partial void LogSavedBundleIgnored(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 2112, Level = LogLevel.Warning, Message = "The trust bundle could not be saved to '{Path}' (Mesh:ControlPlane:StateDirectory): {Error}. The workload runs on; a restart after a CA rotation may not reach the control service.")]
    private static partial void LogSaveFailed(ILogger logger, string path, string error);

    [LoggerMessage(EventId = 2114, Level = LogLevel.Information, Message = "First contact with the control service trusts Mesh:ControlPlane:TrustBundlePath and the trust bundle {Version} ({RootCount} root(s)) saved by an earlier run at '{Path}'.")]
    private static partial void LogLoaded(ILogger logger, string version, int rootCount, string path);

    [LoggerMessage(EventId = 2113, Level = LogLevel.Debug, Message = "Saved trust bundle {Version} ({RootCount} root(s)) to '{Path}' for restarts.")]
    private static partial void LogSaved(ILogger logger, string version, int rootCount, string path);
}
