using System.Collections.Concurrent;
using System.Diagnostics;

namespace MeshKit.Testing;

/// <summary>
/// The OpenTelemetry in-memory exporter wants an <see cref="ICollection{T}"/>; this one writes into a
/// <see cref="ConcurrentQueue{T}"/>, which is safe to read while the apps' threads export into it.
/// </summary>
/// <param name="queue">The queue the exported activities go to.</param>
public sealed class ActivityQueueCollection(ConcurrentQueue<Activity> queue) : ICollection<Activity>
{
    /// <inheritdoc/>
    public int Count => queue.Count;

    /// <inheritdoc/>
    public bool IsReadOnly => false;

    /// <inheritdoc/>
    public void Add(Activity item) => queue.Enqueue(item);

    /// <inheritdoc/>
    public void Clear() => queue.Clear();

    /// <inheritdoc/>
    public bool Contains(Activity item) => queue.Contains(item);

    /// <inheritdoc/>
    public void CopyTo(Activity[] array, int arrayIndex) => queue.CopyTo(array, arrayIndex);

    /// <inheritdoc/>
    public bool Remove(Activity item) => throw new NotSupportedException();

    /// <inheritdoc/>
    public IEnumerator<Activity> GetEnumerator() => queue.GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
