using System.Globalization;
using MeshKit.Routing;

namespace MeshKit.ControlPlane.Canary;

/// <summary>What one check of a canary found.</summary>
internal enum CheckVerdict
{
    /// <summary>Every threshold held.</summary>
    Passed,

    /// <summary>At least one threshold did not hold.</summary>
    Failed,

    /// <summary>The canary served too few requests in the interval to judge.</summary>
    NotEnoughTraffic,
}

/// <summary>One check: the verdict, in words, with the figures it was made on.</summary>
internal sealed record CanaryCheck(CheckVerdict Verdict, string Detail, SubsetFigures Stable, SubsetFigures Canary);

/// <summary>
/// The check of one interval, on the callers' figures for the stable and the canary subsets: Flagger's two built-in checks
/// (request success rate, request duration p99), each absolute and, when asked, relative to the stable subset.
/// </summary>
internal static class CanaryAnalysis
{
    public static CanaryCheck Check(CanaryPolicy spec, SubsetFigures stable, SubsetFigures canary)
    {
        var needed = Math.Max(1, spec.MinRequests);
        if (canary.Requests < needed)
        {
            return new CanaryCheck(
                CheckVerdict.NotEnoughTraffic,
                $"the canary '{spec.CanarySubset}' served {canary.Requests} request(s) in the interval; {needed} are needed to judge it (Canary:MinRequests)",
                stable,
                canary);
        }

        var failed = new List<string>();
        var passed = new List<string>();
        var rate = canary.SuccessRate!.Value;
        (rate < spec.MinSuccessRate ? failed : passed).Add($"success rate {Percent(rate)} {(rate < spec.MinSuccessRate ? "<" : "≥")} {Percent(spec.MinSuccessRate)} (MinSuccessRate)");

        if (spec.MaxSuccessRateDrop is { } drop && stable.SuccessRate is { } stableRate)
        {
            var fell = stableRate - rate;
            (fell > drop ? failed : passed).Add($"success rate {Percent(rate)} vs stable {Percent(stableRate)}: {(fell > drop ? "more" : "no more")} than {Number(drop)} points below (MaxSuccessRateDrop)");
        }

        var p99 = canary.P99Milliseconds!.Value;
        var max = spec.MaxP99.TotalMilliseconds;
        (p99 > max ? failed : passed).Add($"p99 {Milliseconds(p99)} {(p99 > max ? ">" : "≤")} {Milliseconds(max)} (MaxP99)");

        if (spec.MaxP99Increase is { } increase && stable.P99Milliseconds is { } stableP99 && stableP99 > 0)
        {
            var ratio = p99 / stableP99;
            (ratio > increase ? failed : passed).Add($"p99 {Milliseconds(p99)} is {Number(ratio)}× stable's {Milliseconds(stableP99)} ({(ratio > increase ? "over" : "within")} MaxP99Increase {Number(increase)}×)");
        }

        var counts = $"{canary.Requests} request(s), {canary.Failures} failed";
        return failed.Count > 0
            ? new CanaryCheck(CheckVerdict.Failed, $"{string.Join("; ", failed)} ({counts})", stable, canary)
            : new CanaryCheck(CheckVerdict.Passed, $"{string.Join("; ", passed)} ({counts})", stable, canary);
    }

    private static string Percent(double value) => value.ToString("0.##", CultureInfo.InvariantCulture) + " %";

    private static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Milliseconds(double value) => value.ToString("0.#", CultureInfo.InvariantCulture) + " ms";
}
