using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using MeshKit.Routing;
using Microsoft.Extensions.Configuration;

namespace MeshKit.Policy;

/// <summary>The outcome of reading a policy: a snapshot, or every error found.</summary>
/// <param name="Snapshot">The validated snapshot, or <see langword="null"/> when there are errors.</param>
/// <param name="Errors">Every problem found (empty when valid).</param>
public sealed record PolicyReadResult(PolicySnapshot? Snapshot, IReadOnlyList<PolicyError> Errors)
{
    /// <summary>Gets whether the policy is valid.</summary>
    public bool IsValid => Snapshot is not null;
}
