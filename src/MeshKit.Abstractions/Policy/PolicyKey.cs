using System.Collections.Immutable;

namespace MeshKit.Policy;

/// <summary>What a policy setting holds.</summary>
internal enum PolicyValueKind
{
    /// <summary>A section with fixed keys (<see cref="PolicyKey.Keys"/>); other keys are errors.</summary>
    Section,

    /// <summary>An ordered list of <see cref="PolicyKey.Item"/> (a single value is read as a one-element list).</summary>
    List,

    /// <summary>A section whose keys are names the user picks (destinations, subsets, headers), each an <see cref="PolicyKey.Item"/>.</summary>
    Map,

    /// <summary>A .NET TimeSpan, <c>hh:mm:ss(.fff)</c>, from <see cref="PolicyKey.MinimumDuration"/> to <see cref="PolicyKey.MaximumDuration"/>.</summary>
    Duration,

    /// <summary>A whole number from <see cref="PolicyKey.Minimum"/> to <see cref="PolicyKey.Maximum"/>.</summary>
    Integer,

    /// <summary>A number from <see cref="PolicyKey.Minimum"/> to <see cref="PolicyKey.Maximum"/>.</summary>
    Number,

    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,

    /// <summary>A non-empty string (<see cref="PolicyKey.Text"/> says which).</summary>
    String,

    /// <summary>One of <see cref="PolicyKey.Choices"/> (case-insensitive).</summary>
    Choice,
}

/// <summary>
/// One setting of the policy configuration as <see cref="PolicyModel"/> describes it: its key, what it holds, its bounds and
/// default, and the properties of the policy records it fills. The reader takes its key names, known-key lists and bounds
/// from here; tests hold the records, the JSON schema and the docs' tables against it.
/// </summary>
internal sealed record PolicyKey
{
    /// <summary>Gets the configuration key (<c>MaxRetries</c>); for a list or map item, a placeholder (<c>&lt;n&gt;</c>, <c>&lt;name&gt;</c>).</summary>
    public required string Name { get; init; }

    /// <summary>Gets what the setting holds.</summary>
    public required PolicyValueKind Kind { get; init; }

    /// <summary>Gets what a valid value is, in words, for a string, list or map (the reference tables show it).</summary>
    public string? Text { get; init; }

    /// <summary>Gets the smallest value of an <see cref="PolicyValueKind.Integer"/> or <see cref="PolicyValueKind.Number"/>.</summary>
    public double Minimum { get; init; }

    /// <summary>Gets the largest value of an <see cref="PolicyValueKind.Integer"/> or <see cref="PolicyValueKind.Number"/>.</summary>
    public double Maximum { get; init; }

    /// <summary>Gets the shortest <see cref="PolicyValueKind.Duration"/>.</summary>
    public TimeSpan MinimumDuration { get; init; }

    /// <summary>Gets the longest <see cref="PolicyValueKind.Duration"/>.</summary>
    public TimeSpan MaximumDuration { get; init; }

    /// <summary>Gets the values of a <see cref="PolicyValueKind.Choice"/>.</summary>
    public ImmutableArray<string> Choices { get; init; } = [];

    /// <summary>Gets the keys of a <see cref="PolicyValueKind.Section"/>, in the order errors list them.</summary>
    public ImmutableArray<PolicyKey> Keys { get; init; } = [];

    /// <summary>Gets what each element of a <see cref="PolicyValueKind.List"/> or <see cref="PolicyValueKind.Map"/> holds.</summary>
    public PolicyKey? Item { get; init; }

    /// <summary>Gets whether a <see cref="PolicyValueKind.Section"/> may also be written as one string (<c>"Path": "/api"</c>).</summary>
    public bool Shorthand { get; init; }

    /// <summary>Gets the value that applies when the key is left out, as written in configuration; <see langword="null"/> when none (or it is inherited).</summary>
    public string? Default { get; init; }

    /// <summary>Gets the default of a <see cref="PolicyValueKind.List"/>, as written in configuration.</summary>
    public ImmutableArray<string> DefaultList { get; init; } = [];

    /// <summary>Gets valid example values (for a map, example keys), at least two where the value is free text.</summary>
    public ImmutableArray<string> Examples { get; init; } = [];

    /// <summary>Gets whether the key must be given when its section is.</summary>
    public bool Required { get; init; }

    /// <summary>Gets the record this key's value builds (a section's or a map's), whose properties its own keys fill.</summary>
    public Type? Record { get; init; }

    /// <summary>Gets the properties of the enclosing record (the nearest <see cref="Record"/> above) this key fills.</summary>
    public ImmutableArray<string> Properties { get; init; } = [];

    /// <summary>Gets, for a map item, the properties of the nearest record at or above it that the item's key (the name) fills.</summary>
    public ImmutableArray<string> KeyProperties { get; init; } = [];

    /// <summary>Gets the properties of <see cref="Record"/> no key sets, each with where its value comes from.</summary>
    public ImmutableDictionary<string, string> Derived { get; init; } = ImmutableDictionary<string, string>.Empty;

    /// <summary>Gets the names of a section's keys, in order: the "known settings" of an unknown-key error.</summary>
    public ImmutableArray<string> Names => [.. Keys.Select(k => k.Name)];

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Kind})";
}
