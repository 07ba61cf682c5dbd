using System.Collections.Immutable;
using System.Text.RegularExpressions;

namespace MeshKit.Routing;

/// <summary>How a path is matched.</summary>
public enum PathMatchKind
{
    /// <summary>Any path.</summary>
    Any,

    /// <summary>The path starts with the value, at a segment boundary (<c>/api</c> matches <c>/api</c> and <c>/api/x</c>, not <c>/apix</c>).</summary>
    Prefix,

    /// <summary>The path equals the value.</summary>
    Exact,

    /// <summary>The whole path matches a regular expression (non-backtracking).</summary>
    Regex,
}
