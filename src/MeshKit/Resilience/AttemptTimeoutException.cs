namespace MeshKit.Resilience;

/// <summary>
/// An attempt ran out of its attempt timeout while the call still had time: retryable when the policy retries timeouts.
/// The call path raises it, the retry decision reads it; nothing else signals through exception types.
/// </summary>
internal sealed class AttemptTimeoutException(string message, Exception? inner = null) : TimeoutException(message, inner);
