using System.Collections.Concurrent;
using MeshKit.Policy;

namespace MeshKit.Routing;

/// <summary>Reads request headers for route matching, so the matcher works on HttpRequestMessage and on test inputs alike.</summary>
public interface IHeaderSource
{
    /// <summary>Gets the first value of a header, or <see langword="null"/>.</summary>
    /// <param name="name">The header name.</param>
    /// <returns>The value.</returns>
    string? Get(string name);
}
