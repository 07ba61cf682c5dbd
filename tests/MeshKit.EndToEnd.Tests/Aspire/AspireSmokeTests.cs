using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;

namespace MeshKit.EndToEnd.Tests.Aspire;

[Trait("Area", "EndToEnd")]
public sealed class AspireSmokeTests
{
    [Fact]
    public async Task An_AppHost_runs_a_project_as_a_process_and_the_real_dashboard_lists_it()
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromMinutes(2));
        var cancellationToken = deadline.Token;

        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.Smoke_AppHost>(
            AspireDashboard.UnsecuredArguments,
            (options, _) => AspireDashboard.EnableDashboard(options),
            cancellationToken);
        await using var app = await builder.BuildAsync(cancellationToken);
        await app.StartAsync(cancellationToken);
        await app.ResourceNotifications.WaitForResourceAsync("smoke", KnownResourceStates.Running, cancellationToken);

        // A request makes the project export a span over OTLP; the dashboard then lists the resource.
        using var smoke = app.CreateHttpClient("smoke", "http");
        Assert.Equal("smoke", await smoke.GetStringAsync("/", cancellationToken));

        using var dashboard = new HttpClient { BaseAddress = AspireDashboard.GetUrl(app), Timeout = TimeSpan.FromSeconds(10) };
        var resources = await AspireDashboard.PollAsync(
            dashboard,
            "/api/telemetry/resources",
            json => json.EnumerateArray().Any(r => r.GetProperty("name").GetString() == "smoke" && r.GetProperty("hasTraces").GetBoolean()),
            TimeSpan.FromSeconds(60),
            cancellationToken);
        Assert.Contains(resources.EnumerateArray(), r => r.GetProperty("name").GetString() == "smoke");

        var traces = await AspireDashboard.PollAsync(
            dashboard,
            "/api/telemetry/traces?resource=smoke&limit=10",
            json => AspireDashboard.Spans(json).Any(s => s.GetProperty("name").GetString() == "GET /"),
            TimeSpan.FromSeconds(30),
            cancellationToken);
        Assert.True(traces.GetProperty("totalCount").GetInt32() >= 1);
    }
}
