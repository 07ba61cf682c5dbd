using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.EndToEnd.Tests.Aspire;

/// <summary>Finds and reads the Aspire dashboard that an AppHost under test started.</summary>
internal static class AspireDashboard
{
    public const string ResourceName = "aspire-dashboard";

    /// <summary>
    /// Arguments that turn the dashboard's telemetry API on without credentials. Aspire.Hosting.Testing disables the
    /// dashboard by default (see <see cref="EnableDashboard"/>).
    /// </summary>
    public static readonly string[] UnsecuredArguments =
    [
        "--ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS=true",
        "--ASPIRE_ALLOW_UNSECURED_TRANSPORT=true",
    ];

    public static void EnableDashboard(DistributedApplicationOptions options)
    {
        options.DisableDashboard = false;
        options.AllowUnsecuredTransport = true;
    }

    /// <summary>The dashboard is an executable resource; with the testing builder its port is random.</summary>
    public static Uri GetUrl(DistributedApplication app)
    {
        var model = app.Services.GetRequiredService<DistributedApplicationModel>();
        var dashboard = model.Resources.OfType<IResourceWithEndpoints>().FirstOrDefault(r => r.Name == ResourceName)
            ?? throw new InvalidOperationException("The AppHost has no dashboard resource; was it disabled?");
        var endpoint = dashboard.GetEndpoints().FirstOrDefault(e => e.EndpointName is "http" or "https" && e.IsAllocated)
            ?? throw new InvalidOperationException("The dashboard has no allocated http endpoint.");
        return new Uri(endpoint.Url);
    }

    /// <summary>Polls a telemetry API path until <paramref name="done"/> holds for its JSON, within <paramref name="timeout"/>.</summary>
    public static async Task<JsonElement> PollAsync(HttpClient dashboard, string path, Func<JsonElement, bool> done, TimeSpan timeout, CancellationToken cancellationToken)
    {
        JsonElement last = default;
        await MeshKit.Testing.Eventually.WaitAsync(
            async () =>
            {
                using var response = await dashboard.GetAsync(path, cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    return false;
                }

                last = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
                return done(last);
            },
            timeout,
            $"the dashboard's {path} to show the expected data",
            TimeSpan.FromMilliseconds(250));
        return last;
    }

    /// <summary>The names of every span in an OTLP-JSON answer of /traces or /spans.</summary>
    public static IEnumerable<JsonElement> Spans(JsonElement answer) =>
        answer.GetProperty("data").GetProperty("resourceSpans").EnumerateArray()
            .SelectMany(rs => rs.GetProperty("scopeSpans").EnumerateArray())
            .SelectMany(ss => ss.GetProperty("spans").EnumerateArray());
}
