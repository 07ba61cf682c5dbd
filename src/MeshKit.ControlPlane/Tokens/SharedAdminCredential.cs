using System.Text;
using MeshKit.Consul;
using MeshKit.ControlPlane.Storage;

namespace MeshKit.ControlPlane.Tokens;

/// <summary>
/// One admin token for every replica on Consul: the first replica to start stores the SHA-256 of its token (configured or
/// generated) at <c>&lt;KeyPrefix&gt;admin/token-sha256</c> with check-and-set, and every replica follows that key with a
/// blocking query and accepts the token it names, besides its own. The token itself never leaves the replica that has it;
/// rotate it by setting <c>ControlPlane:AdminToken</c> on the replicas and deleting the key (the next replica to start
/// stores its hash). Consul being unreachable keeps the hash last read; each replica's own token always works on it.
/// </summary>
internal sealed partial class SharedAdminCredential(SharedConsul shared, AdminCredential credential, ILogger<SharedAdminCredential> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (shared.Client is not { } consul)
        {
            return;
        }

        var key = shared.AdminTokenKey;
        var own = Convert.ToHexStringLower(credential.Hash);
        var query = consul.CreateKeyValueQuery(key);
        try
        {
            await foreach (var result in query.WatchAsync(stoppingToken).ConfigureAwait(false))
            {
                if (result.Value.Count == 0)
                {
                    // No shared token yet: this replica's becomes it (only if still absent: CAS 0).
                    try
                    {
                        if (await consul.PutKeyAsync(key, Encoding.ASCII.GetBytes(own), cas: 0, cancellationToken: stoppingToken).ConfigureAwait(false))
                        {
                            LogStored(logger, key);
                        }
                    }
                    catch (ConsulException ex)
                    {
                        LogStoreFailed(logger, key, ex.Message);
                    }

                    continue;
                }

                var text = Encoding.ASCII.GetString(result.Value[0].Value.Span).Trim();
                byte[]? hash = null;
                try
                {
                    hash = text.Length == 64 ? Convert.FromHexString(text) : null;
                }
                catch (FormatException)
                {
                }

                if (hash is null)
                {
                    LogInvalid(logger, key);
                }
                else if (!string.Equals(text, own, StringComparison.OrdinalIgnoreCase))
                {
                    LogOther(logger, key);
                }

                credential.SetShared(hash);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 1605, Level = LogLevel.Information, Message = "This replica's admin token is now the one the replicas share: its SHA-256 is at Consul key {Key}.")]
    private static partial void LogStored(ILogger logger, string key);

    [LoggerMessage(EventId = 1606, Level = LogLevel.Warning, Message = "Could not store this replica's admin token hash at Consul key {Key} ({Error}); only this replica's own token works here until Consul answers.")]
    private static partial void LogStoreFailed(ILogger logger, string key, string error);

    [LoggerMessage(EventId = 1607, Level = LogLevel.Information, Message = "The replicas share another replica's admin token (its SHA-256 at Consul key {Key}); it works here too, besides this replica's own.")]
    private static partial void LogOther(ILogger logger, string key);

    [LoggerMessage(EventId = 1608, Level = LogLevel.Warning, Message = "Consul key {Key} does not hold a SHA-256 in hex; no shared admin token is accepted until it does (this replica's own still works).")]
    private static partial void LogInvalid(ILogger logger, string key);
}
