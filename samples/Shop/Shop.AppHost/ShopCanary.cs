using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Shop.AppHost;

/// <summary>
/// <c>--Shop:Canary:Enabled=true</c>: the control service runs an automated canary of orders v2 for frontend's calls
/// (docs/canary.md), with short intervals so that a run shows it within a minute. Off by default: the Shop's usual 90/10
/// split stays as its appsettings say. With <c>--Shop:OrdersV2:FailureRate=0.2</c>, v2 fails a fifth of its orders and
/// the canary is rolled back.
/// </summary>
public static class ShopCanary
{
    /// <summary>The AppHost setting that turns the canary on.</summary>
    public const string EnabledKey = "Shop:Canary:Enabled";

    /// <summary>
    /// The central policy of frontend, as the control service's seed settings (<c>ControlPlane__Policy__Services__...</c>):
    /// frontend's own policy for orders (a central destination replaces the local one whole) with a canary on its route.
    /// </summary>
    /// <param name="configuration">The AppHost's configuration (<c>Shop:Canary:Interval</c>, default 5 s).</param>
    /// <returns>The environment variables of the control service.</returns>
    public static IReadOnlyDictionary<string, string> CentralPolicy(IConfiguration configuration)
    {
        var interval = configuration["Shop:Canary:Interval"] ?? "00:00:05";
        const string Orders = "ControlPlane__Policy__Services__frontend__Policy__Destinations__orders__";
        const string Route = Orders + "Routes__0__";
        return new Dictionary<string, string>
        {
            [Orders + "Timeout"] = "00:00:10",
            [Orders + "AttemptTimeout"] = "00:00:03",
            [Orders + "Retry__MaxRetries"] = "2",
            [Orders + "Retry__Methods"] = "Idempotent",
            [Orders + "Retry__BaseDelay"] = "00:00:00.025",
            [Orders + "Retry__MaxDelay"] = "00:00:00.500",
            [Orders + "Retry__Budget__Ratio"] = "0.2",
            [Route + "Name"] = "canary",
            [Route + "Match__Path__Prefix"] = "/api/orders",
            [Route + "Canary__StableSubset"] = "v1",
            [Route + "Canary__CanarySubset"] = "v2",
            [Route + "Canary__Steps__0"] = "20",
            [Route + "Canary__Steps__1"] = "50",
            [Route + "Canary__Interval"] = interval,
            [Route + "Canary__MinRequests"] = configuration["Shop:Canary:MinRequests"] ?? "10",
            [Route + "Canary__MinSuccessRate"] = "99",
            [Route + "Canary__MaxP99"] = "00:00:01",
            [Route + "Canary__FailedChecks"] = "2",
        };
    }

    /// <summary>Reads <c>Shop:OrdersV2:FailureRate</c>: a share from 0 to 1, or an error naming the setting.</summary>
    public static string? FailureRate(IConfiguration configuration, out string? problem)
    {
        problem = null;
        var text = configuration["Shop:OrdersV2:FailureRate"];
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var rate) || rate is < 0 or > 1 || double.IsNaN(rate))
        {
            problem = $"Shop:OrdersV2:FailureRate is '{text}'; use a share of orders from 0 to 1, for example 0.2.";
            return null;
        }

        return rate.ToString(CultureInfo.InvariantCulture);
    }
}
