using System.Reflection;
using MeshKit.Policy;
using MeshKit.Resilience;

namespace MeshKit.Tests.Resilience;

/// <summary>
/// The resilience pipeline's key (<see cref="ResilienceSettings"/>) against <see cref="DestinationPolicy"/>: the pipeline is
/// built from its key alone, so every setting it uses is in the key; these tests make a new destination setting a decision
/// (in the key, or read per call) instead of a field silently left out of the key and so never rebuilt on reload.
/// </summary>
[Trait("Area", "Traffic")]
public sealed class ResilienceSettingsTests
{
    [Fact]
    public void Every_destination_setting_is_either_in_the_pipeline_key_or_named_as_read_per_call()
    {
        var settings = typeof(DestinationPolicy).GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var keyed = typeof(ResilienceSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var perCall = ResilienceSettings.ReadPerCall.Keys.ToHashSet(StringComparer.Ordinal);

        var problems = settings.Except(keyed).Except(perCall).Select(p =>
            $"DestinationPolicy.{p}: neither in ResilienceSettings (the pipeline's key, which the pipeline is built from) nor in ResilienceSettings.ReadPerCall. If it shapes the pipeline, add it to the key; else name what reads it per call.")
            .Concat(keyed.Intersect(perCall).Select(p => $"DestinationPolicy.{p}: both in the pipeline's key and named as read per call."))
            .Concat(keyed.Concat(perCall).Except(settings).Select(p => $"{p}: not a property of DestinationPolicy."))
            .ToList();
        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems));
    }

    [Fact]
    public void Changing_any_setting_in_the_key_changes_the_key_so_the_pipeline_is_rebuilt_on_reload()
    {
        var policy = new DestinationPolicy { Destination = "orders" };
        var clone = typeof(DestinationPolicy).GetMethod("<Clone>$")!;
        foreach (var property in typeof(ResilienceSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var source = typeof(DestinationPolicy).GetProperty(property.Name);
            Assert.True(source is not null && source.PropertyType == property.PropertyType, $"ResilienceSettings.{property.Name} has no DestinationPolicy property of the same name and type to come from.");
            Assert.Equal(source.GetValue(policy), property.GetValue(ResilienceSettings.Of(policy)));

            object changed = source.GetValue(policy) switch
            {
                TimeSpan time => time + TimeSpan.FromSeconds(1),
                RetryPolicy retry => retry with { MaxRetries = retry.MaxRetries + 1 },
                ConcurrencyPolicy concurrency => concurrency with { MaxRequests = concurrency.MaxRequests + 1 },
                var other => throw new InvalidOperationException($"Teach this test another value of {other?.GetType()} for {property.Name}."),
            };
            var edited = (DestinationPolicy)clone.Invoke(policy, null)!;
            source.SetValue(edited, changed);
            Assert.True(ResilienceSettings.Of(edited) != ResilienceSettings.Of(policy), $"Changing DestinationPolicy.{property.Name} leaves the pipeline's key unchanged: ResilienceSettings.Of does not copy it.");
        }
    }

    [Fact]
    public void Settings_read_per_call_leave_the_key_and_so_the_pipeline_and_its_retry_budget_alone()
    {
        var policy = new DestinationPolicy { Destination = "orders" };
        var edited = policy with
        {
            AttemptTimeout = TimeSpan.FromSeconds(3),
            FailurePenalty = TimeSpan.FromSeconds(2),
            LoadBalancer = LoadBalancerKind.RoundRobin,
            SubsetKey = "track",
            OutlierDetection = new OutlierPolicy { ConsecutiveFailures = 2 },
        };
        Assert.Equal(ResilienceSettings.Of(policy), ResilienceSettings.Of(edited));
    }
}
