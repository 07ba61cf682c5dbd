using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Http;

namespace MeshKit.Tests.Canary;

/// <summary>
/// The canary loop over real sockets: a caller reports its attempts on a canary route to a real control service, whose
/// analysis (1 s intervals) moves the route's split in the caller's central policy, which reaches the caller over the
/// control channel. A healthy v2 is promoted and then serves every call; a failing v2 is rolled back and v1 serves every
/// call again. Retries are on, as in the Shop: the figures count attempts, so they cannot hide the failures.
/// </summary>
[Trait("Area", "Canary")]
[Collection(LoadCollection.Name)]
public sealed class CanaryEndToEndTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_healthy_canary_is_promoted_step_by_step_and_then_serves_every_call()
    {
        await using var run = await CanaryRun.StartAsync(failing: false);

        var state = await run.WaitForPhaseAsync("Promoted");

        Assert.Equal(["start", "advance", "promote"], Actions(state));
        Assert.Equal(100, state.GetProperty("weight").GetInt32());
        await run.WaitUntilEveryCallGoesToAsync("v2");
    }

    [Fact]
    public async Task A_failing_canary_is_rolled_back_within_two_checks_and_v1_serves_every_call_again()
    {
        await using var run = await CanaryRun.StartAsync(failing: true);

        var state = await run.WaitForPhaseAsync("RolledBack");

        Assert.Equal(["start", "hold", "rollback"], Actions(state));
        Assert.Equal(2, state.GetProperty("failedChecks").GetInt32());
        Assert.Contains("success rate", state.GetProperty("reason").GetString(), StringComparison.Ordinal);
        await run.WaitUntilEveryCallGoesToAsync("v1");
    }

    private static string[] Actions(JsonElement state) =>
        [.. state.GetProperty("decisions").EnumerateArray().Select(d => d.GetProperty("action").GetString()!).Where(a => a != "wait")];

    private sealed class CanaryRun : IAsyncDisposable
    {
        private readonly MeshTestBed _bed;
        private readonly Upstream _v1;
        private readonly Upstream _v2;
        private readonly MeshAppHost _caller;
        private readonly HttpClient _admin;
        private readonly CancellationTokenSource _stop = new(TimeSpan.FromSeconds(40));
        private readonly Task _load;

        private CanaryRun(MeshTestBed bed, Upstream v1, Upstream v2, MeshAppHost caller)
        {
            _bed = bed;
            _v1 = v1;
            _v2 = v2;
            _caller = caller;
            _admin = bed.ControlPlane.CreateAdminClient();
            _load = LoadAsync();
        }

        public static async Task<CanaryRun> StartAsync(bool failing)
        {
            var bed = new MeshTestBed();
            await bed.InitializeAsync();
            var v1 = await Upstream.StartAsync(bed, "orders", "v1");
            var v2 = await Upstream.StartAsync(bed, "orders", "v2", failing
                ? (http, me) =>
                {
                    http.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    return http.Response.WriteAsync(me.Version);
                }
                : null);
            var caller = await Caller.StartAsync(bed, "orders", [v1, v2], new Dictionary<string, string?>
            {
                ["Mesh:ControlPlane:TrafficReportInterval"] = "00:00:00.200",
            });

            // frontend's central policy: a canary on its route to orders, checked every second.
            using var admin = bed.ControlPlane.CreateAdminClient();
            const string Policy = """
                {
                  "Policy": {
                    "Destinations": {
                      "orders": {
                        "Retry": { "MaxRetries": 2 },
                        "OutlierDetection": { "Enabled": false },
                        "Routes": [
                          {
                            "Name": "canary",
                            "Canary": {
                              "StableSubset": "v1", "CanarySubset": "v2", "Steps": [ 30, 60 ],
                              "Interval": "00:00:01", "MinRequests": 5, "MinSuccessRate": 95, "MaxP99": "00:00:02", "FailedChecks": 2
                            }
                          }
                        ]
                      }
                    }
                  }
                }
                """;
            using var put = await admin.PutAsync("v1/policy/frontend", new StringContent(Policy, Encoding.UTF8, "application/json"), Ct);
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync(Ct));
            return new CanaryRun(bed, v1, v2, caller);
        }

        public async Task<JsonElement> WaitForPhaseAsync(string phase)
        {
            JsonElement last = default;
            await Eventually.WaitAsync(
                async () =>
                {
                    var list = await _admin.GetFromJsonAsync<JsonElement>("v1/canaries", Ct);
                    var canaries = list.GetProperty("canaries");
                    if (canaries.GetArrayLength() == 0)
                    {
                        return false;
                    }

                    last = canaries[0].Clone();
                    return last.GetProperty("phase").GetString() == phase;
                },
                TimeSpan.FromSeconds(20),
                $"the canary to be {phase}",
                TimeSpan.FromMilliseconds(100));
            Assert.Equal("frontend/orders/canary", last.GetProperty("key").GetString());
            return last;
        }

        /// <summary>The last write reached the caller: twenty calls in a row are served by <paramref name="version"/>.</summary>
        public async Task WaitUntilEveryCallGoesToAsync(string version)
        {
            var client = _caller.Client("orders");
            await Eventually.WaitAsync(
                async () =>
                {
                    for (var i = 0; i < 20; i++)
                    {
                        using var response = await client.GetAsync("/", Ct);
                        if (await response.Content.ReadAsStringAsync(Ct) != version)
                        {
                            return false;
                        }
                    }

                    return true;
                },
                TimeSpan.FromSeconds(10),
                $"every call to go to {version}");
        }

        /// <summary>Traffic for the analysis: about 60 calls a second until the run ends (bounded: 40 s). Load-style, so the
        /// class runs in the load collection, alone.</summary>
        private async Task LoadAsync()
        {
            var client = _caller.Client("orders");
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
                    {
                        using var response = await client.GetAsync("/", _stop.Token);
                    }));
                    await Task.Delay(50, _stop.Token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException)
                {
                    // the end of the run, or a refusal the figures already count
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _load;
            _admin.Dispose();
            await _caller.DisposeAsync();
            await _v1.DisposeAsync();
            await _v2.DisposeAsync();
            await _bed.DisposeAsync();
            _stop.Dispose();
        }
    }
}
