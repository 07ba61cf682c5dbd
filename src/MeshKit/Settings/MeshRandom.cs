namespace MeshKit;

/// <summary>
/// The data plane's one source of randomness: the weighted split, mirror and fault sampling, the balancer's power of two
/// choices and the certificate renewal jitter all draw from it. A singleton in the container (<c>AddMesh()</c> registers
/// <see cref="Shared"/>, backed by <see cref="Random.Shared"/>); a test registers or passes one built on a seeded
/// <see cref="Random"/> so that its draws repeat. Time comes from the container's <see cref="TimeProvider"/> the same way.
/// </summary>
/// <remarks>
/// Sealed and without virtual members of its own, so a draw costs what a draw from <see cref="Random.Shared"/> costs (one
/// call through <see cref="Random"/>, as before). A seeded <see cref="Random"/> is not thread-safe: give one to code that
/// draws from a single thread, as unit tests do.
/// </remarks>
/// <param name="source">Where the numbers come from.</param>
internal sealed class MeshRandom(Random source)
{
    /// <summary>Gets the process-wide source, backed by <see cref="Random.Shared"/> (thread-safe).</summary>
    public static MeshRandom Shared { get; } = new(Random.Shared);

    /// <summary>Returns a number from 0 to <paramref name="maxValue"/> (exclusive).</summary>
    /// <param name="maxValue">The exclusive upper bound; at least 0.</param>
    /// <returns>The number.</returns>
    public int Next(int maxValue) => source.Next(maxValue);

    /// <summary>Returns a number from 0.0 to 1.0 (exclusive).</summary>
    /// <returns>The number.</returns>
    public double NextDouble() => source.NextDouble();
}
