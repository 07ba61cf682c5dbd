using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace MeshKit.ControlPlane.Signing;

/// <summary>
/// Copies of a CA key, one per concurrent signature: .NET does not document its key objects as thread-safe, and one lock
/// around every signature (with the certificate encoding inside it) capped the sign endpoint at one core. A key that
/// cannot be exported is used alone, under a lock, as before.
/// </summary>
internal sealed class SigningKeys
{
    private static readonly ConditionalWeakTable<AsymmetricAlgorithm, SigningKeys> Pools = [];
    private readonly AsymmetricAlgorithm _original;
    private readonly ConcurrentQueue<AsymmetricAlgorithm> _spare = new();
    private readonly Lock _originalGate = new();
    private readonly int _keep = Math.Max(2, Environment.ProcessorCount * 2);
    private bool _notExportable;

    private SigningKeys(AsymmetricAlgorithm original) => _original = original;

    /// <summary>Signs with a copy of <paramref name="key"/> that no other thread uses meanwhile.</summary>
    /// <typeparam name="TState">What <paramref name="sign"/> needs.</typeparam>
    /// <typeparam name="TResult">What it returns.</typeparam>
    /// <param name="key">The CA key.</param>
    /// <param name="state">Passed to <paramref name="sign"/>.</param>
    /// <param name="sign">The signing work.</param>
    /// <returns>What <paramref name="sign"/> returned.</returns>
    public static TResult With<TState, TResult>(AsymmetricAlgorithm key, TState state, Func<AsymmetricAlgorithm, TState, TResult> sign) =>
        Pools.GetValue(key, static k => new SigningKeys(k)).Use(state, sign);

    private TResult Use<TState, TResult>(TState state, Func<AsymmetricAlgorithm, TState, TResult> sign)
    {
        if (!_spare.TryDequeue(out var copy))
        {
            copy = Volatile.Read(ref _notExportable) ? null : Copy();
            if (copy is null)
            {
                lock (_originalGate)
                {
                    return sign(_original, state);
                }
            }
        }

        try
        {
            return sign(copy, state);
        }
        finally
        {
            if (_spare.Count < _keep)
            {
                _spare.Enqueue(copy);
            }
            else
            {
                copy.Dispose();
            }
        }
    }

    private AsymmetricAlgorithm? Copy()
    {
        try
        {
            switch (_original)
            {
                case ECDsa ecdsa:
                {
                    var parameters = ecdsa.ExportParameters(includePrivateParameters: true);
                    try
                    {
                        return ECDsa.Create(parameters);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(parameters.D);
                    }
                }

                case RSA rsa:
                {
                    var parameters = rsa.ExportParameters(includePrivateParameters: true);
                    try
                    {
                        return RSA.Create(parameters);
                    }
                    finally
                    {
                        CryptographicOperations.ZeroMemory(parameters.D);
                        CryptographicOperations.ZeroMemory(parameters.P);
                        CryptographicOperations.ZeroMemory(parameters.Q);
                        CryptographicOperations.ZeroMemory(parameters.DP);
                        CryptographicOperations.ZeroMemory(parameters.DQ);
                        CryptographicOperations.ZeroMemory(parameters.InverseQ);
                    }
                }

                default:
                    Volatile.Write(ref _notExportable, true);
                    return null;
            }
        }
        catch (CryptographicException)
        {
            Volatile.Write(ref _notExportable, true);
            return null;
        }
    }
}
