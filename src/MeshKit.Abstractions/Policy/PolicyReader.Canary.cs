using System.Collections.Immutable;
using MeshKit.Routing;

namespace MeshKit.Policy;

/// <summary>Reads a route's automated canary (<c>Routes:&lt;n&gt;:Canary</c>).</summary>
public static partial class PolicyReader
{
    private static CanaryPolicy? ReadCanary(Section section, SubsetSplit? split, bool splitWritten)
    {
        if (!section.Exists)
        {
            return null;
        }

        section.CheckKnown(PolicyModel.CanaryKeys.Section);
        var stable = ReadCanarySubset(section, PolicyModel.CanaryKeys.StableSubset);
        var canary = ReadCanarySubset(section, PolicyModel.CanaryKeys.CanarySubset);
        if (stable is not null && canary is not null && string.Equals(stable, canary, StringComparison.Ordinal))
        {
            section.Error(PolicyModel.CanaryKeys.CanarySubset.Name, $"is '{canary}', the same as StableSubset; a canary moves traffic between two subsets.");
            canary = null;
        }

        var steps = ReadCanarySteps(section);
        var defaults = new CanaryPolicy { StableSubset = string.Empty, CanarySubset = string.Empty, Steps = [] };
        var maxDrop = section.Double(PolicyModel.CanaryKeys.MaxSuccessRateDrop);
        var maxIncrease = section.Double(PolicyModel.CanaryKeys.MaxP99Increase);
        var result = new CanaryPolicy
        {
            StableSubset = stable ?? string.Empty,
            CanarySubset = canary ?? string.Empty,
            Steps = steps,
            Interval = section.Duration(PolicyModel.CanaryKeys.Interval) ?? defaults.Interval,
            MinRequests = section.Int(PolicyModel.CanaryKeys.MinRequests) ?? defaults.MinRequests,
            MinSuccessRate = section.Double(PolicyModel.CanaryKeys.MinSuccessRate) ?? defaults.MinSuccessRate,
            MaxSuccessRateDrop = maxDrop,
            MaxP99 = section.Duration(PolicyModel.CanaryKeys.MaxP99) ?? defaults.MaxP99,
            MaxP99Increase = maxIncrease,
            FailedChecks = section.Int(PolicyModel.CanaryKeys.FailedChecks) ?? defaults.FailedChecks,
            Promote = section.Bool(PolicyModel.CanaryKeys.Promote) ?? defaults.Promote,
        };

        // The analysis writes the route's Split: when written, it holds exactly the two subsets.
        if (splitWritten && split is not null && stable is not null && canary is not null
            && (split.Subsets.Length != 2 || !split.Subsets.Contains(stable) || !split.Subsets.Contains(canary)))
        {
            section.Error(null, $"moves traffic between '{stable}' and '{canary}', but the route's Split has {string.Join(", ", split.Subsets.Select(s => $"'{s}'"))}; a canary's Split holds exactly its two subsets.");
        }

        return stable is null || canary is null || steps.IsDefaultOrEmpty ? null : result;
    }

    private static string? ReadCanarySubset(Section section, PolicyKey key)
    {
        var value = section.String(key);
        if (value is null)
        {
            if (section.Config[key.Name] is null)
            {
                section.Error(key.Name, "is missing; name the subset (a metadata value such as 'v1').");
            }

            return null;
        }

        if (!MeshNames.IsValidSubsetName(value, out var why))
        {
            section.Error(key.Name, $"'{value}' is not a subset name: it {why}.");
            return null;
        }

        return value;
    }

    private static ImmutableArray<int> ReadCanarySteps(Section section)
    {
        var list = section.Child(PolicyModel.CanaryKeys.Steps);
        var hasStepWeight = section.Config[PolicyModel.CanaryKeys.StepWeight.Name] is not null;
        var hasMaxWeight = section.Config[PolicyModel.CanaryKeys.MaxWeight.Name] is not null;
        if (list.Exists)
        {
            if (hasStepWeight || hasMaxWeight)
            {
                section.Error(PolicyModel.CanaryKeys.Steps.Name, "and StepWeight/MaxWeight both set the steps; keep one.");
                return [];
            }

            var steps = ImmutableArray.CreateBuilder<int>();
            var shape = PolicyModel.CanaryKeys.Steps.Item!;
            foreach (var (key, _) in list.ListValues())
            {
                if (key.Length == 0)
                {
                    list.Error(null, "is one value; list the weights, for example [10, 25, 50].");
                    return [];
                }

                if (list.Int(key, shape) is not { } weight)
                {
                    return [];
                }

                if (steps.Count > 0 && weight <= steps[^1])
                {
                    list.Error(key, $"is {weight}, not above the step before it ({steps[^1]}); steps rise.");
                    return [];
                }

                steps.Add(weight);
            }

            if (steps.Count == 0)
            {
                list.Error(null, "is empty; list the canary's weights, for example [10, 25, 50].");
            }

            return steps.ToImmutable();
        }

        var step = section.Int(PolicyModel.CanaryKeys.StepWeight) ?? int.Parse(PolicyModel.CanaryKeys.StepWeight.Default!, System.Globalization.CultureInfo.InvariantCulture);
        var max = section.Int(PolicyModel.CanaryKeys.MaxWeight) ?? int.Parse(PolicyModel.CanaryKeys.MaxWeight.Default!, System.Globalization.CultureInfo.InvariantCulture);
        if (max < step)
        {
            section.Error(PolicyModel.CanaryKeys.MaxWeight.Name, $"is {max}, below StepWeight {step}.");
            return [];
        }

        var built = ImmutableArray.CreateBuilder<int>();
        for (var weight = step; weight <= max; weight += step)
        {
            built.Add(weight);
        }

        if (built[^1] != max)
        {
            built.Add(max); // Flagger's rule: the last step is the maximum, even when the step does not divide it
        }

        return built.ToImmutable();
    }
}
