using MeshKit.Deadlines;
using System.Diagnostics.Metrics;
using System.Net;
using MeshKit.Balancing;
using MeshKit.Discovery;
using MeshKit.Identity;
using MeshKit.Policy;
using MeshKit.Resilience;
using MeshKit.Telemetry;
using MeshKit.Transport;
using Microsoft.Extensions.DependencyInjection;
using Polly.Timeout;

namespace MeshKit.Tests.Balancing;

/// <summary>
/// The attempt stage on a virtual clock: the attempt timeout, the latency and outcome fed to the balancer and the outlier
/// detector, and the deadline sent on are all read from the mesh's <see cref="TimeProvider"/>, here a fake one.
/// </summary>
[Trait("Area", "Traffic")]
public sealed class MeshAttemptHandlerTests : IAsyncDisposable
{
    // A real-time bound on what must happen at once after the virtual clock moved.
    private static readonly TimeSpan Promptly = TimeSpan.FromSeconds(10);

    private readonly BalancingClock _clock = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MeshDestination.Cache _destinations = new("mesh.local", new MeshDestinationNames("default", [], null));
    private readonly MeshEndpoint[] _subset = BalancingClock.Pool(3);
    private readonly MeshMetrics _metrics;

    public MeshAttemptHandlerTests() =>
        _metrics = new MeshMetrics(_services.GetRequiredService<IMeterFactory>());

    [Fact]
    public async Task An_attempt_that_outlasts_its_attempt_timeout_on_the_mesh_clock_fails_as_a_timeout_that_names_the_setting()
    {
        var policy = new DestinationPolicy { Destination = BalancingClock.Destination, AttemptTimeout = TimeSpan.FromMinutes(5) };
        var send = Send(policy, async (_, ct) =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            return new HttpResponseMessage(HttpStatusCode.OK);
        });

        _clock.Time.Advance(TimeSpan.FromMinutes(5) - TimeSpan.FromTicks(1));
        Assert.False(send.IsCompleted);

        _clock.Time.Advance(TimeSpan.FromTicks(1));
        var error = await Assert.ThrowsAsync<TimeoutRejectedException>(() => send.WaitAsync(Promptly, TestContext.Current.CancellationToken));
        Assert.Contains("Mesh:Policy:Destinations:orders:AttemptTimeout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_latency_fed_to_the_balancer_is_measured_on_the_mesh_clock()
    {
        var answer = new TaskCompletionSource<HttpResponseMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var send = Send(new DestinationPolicy { Destination = BalancingClock.Destination }, (_, _) => answer.Task);

        _clock.Time.Advance(TimeSpan.FromMilliseconds(250));
        answer.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        using var response = await send.WaitAsync(Promptly, TestContext.Current.CancellationToken);

        Assert.Equal(250, _clock.State(_subset[0]).LatencyMs, 6);
    }

    [Fact]
    public async Task A_failed_attempt_ejects_the_endpoint_for_the_base_ejection_time_of_the_mesh_clock()
    {
        var policy = new DestinationPolicy
        {
            Destination = BalancingClock.Destination,
            OutlierDetection = new OutlierPolicy { ConsecutiveFailures = 1, BaseEjectionTime = TimeSpan.FromSeconds(30) },
        };

        using var response = await Send(policy, (_, _) => Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable))).WaitAsync(Promptly, TestContext.Current.CancellationToken);

        var state = _clock.State(_subset[0]);
        Assert.Equal(_clock.States.Now + (30 * _clock.Time.TimestampFrequency), state.EjectedUntil);
        Assert.Equal([(BalancingClock.Destination, _subset[0].Key)], _clock.States.EjectedNow());
        _clock.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Empty(_clock.States.EjectedNow());
    }

    [Fact]
    public async Task The_deadline_sent_on_is_the_time_left_on_the_mesh_clock()
    {
        string? sent = null;
        var call = Call(new DestinationPolicy { Destination = BalancingClock.Destination });
        call.DeadlineTimestamp = _clock.States.Now + (_clock.Time.TimestampFrequency * 3 / 2);
        _clock.Time.Advance(TimeSpan.FromMilliseconds(400));

        using var response = await Send(call, (request, _) =>
        {
            sent = request.Headers.GetValues(MeshDeadline.HeaderName).Single();
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
        }).WaitAsync(Promptly, TestContext.Current.CancellationToken);

        Assert.Equal("1100", sent);
    }

    public async ValueTask DisposeAsync()
    {
        _destinations.Dispose();
        await _services.DisposeAsync();
        await _clock.DisposeAsync();
    }

    private MeshCall Call(DestinationPolicy policy) =>
        new(_destinations.Get(new Uri("https://orders/"))!, HttpMethod.Get) { Policy = policy, Endpoint = _subset[0], Candidates = _subset };

    private Task<HttpResponseMessage> Send(DestinationPolicy policy, Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> endpoint) =>
        Send(Call(policy), endpoint);

    private Task<HttpResponseMessage> Send(MeshCall call, Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> endpoint)
    {
        var invoker = new HttpMessageInvoker(new MeshAttemptHandler(_clock.States, _metrics) { InnerHandler = new Terminal(endpoint) });
        var request = new HttpRequestMessage(HttpMethod.Get, "https://orders/");
        request.Options.Set(MeshCall.OptionsKey, call);
        return invoker.SendAsync(request, TestContext.Current.CancellationToken);
    }

    /// <summary>Stands in for the transport: answers as the test says.</summary>
    private sealed class Terminal(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> answer) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) => answer(request, cancellationToken);
    }
}
