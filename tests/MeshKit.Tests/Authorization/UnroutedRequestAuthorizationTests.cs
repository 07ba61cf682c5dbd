using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MeshKit.Testing;
using MeshKit.Tests.Identity;
using MeshKit.Tests.Traffic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MeshKit.Tests.Authorization;

/// <summary>Mesh authorization covers requests that no routed endpoint serves: middleware that answers by itself.</summary>
[Trait("Area", "Authorization")]
public sealed class UnroutedRequestAuthorizationTests(MeshTestBed bed) : IClassFixture<MeshTestBed>
{
    private const string Answer = "answered by middleware";

    private static readonly Dictionary<string, string?> Rules = new()
    {
        ["Mesh:Authorization:DefaultAction"] = "Deny",
        ["Mesh:Authorization:Rules:0:Name"] = "no-admin",
        ["Mesh:Authorization:Rules:0:Action"] = "Deny",
        ["Mesh:Authorization:Rules:0:To:Paths:0"] = "/api/admin/*",
        ["Mesh:Authorization:Rules:1:Name"] = "frontend-calls",
        ["Mesh:Authorization:Rules:1:From:Services:0"] = "frontend",
        ["Mesh:Authorization:Rules:2:Name"] = "orders-by-id",
        ["Mesh:Authorization:Rules:2:From:Services:0"] = "inventory",
        ["Mesh:Authorization:Rules:2:To:Paths:0"] = "/api/orders/{id}",
    };

    [Fact]
    public async Task A_Deny_by_default_policy_refuses_an_app_Run_answer_to_a_caller_without_an_allow_rule_and_serves_an_allowed_one()
    {
        // No endpoint at all: the app is one terminal middleware, and routing never runs.
        var answered = 0;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: Rules, map: app =>
            app.Run(async http =>
            {
                Interlocked.Increment(ref answered);
                await http.Response.WriteAsync(Answer);
            }));
        await using var frontend = await StartCallerAsync(orders, "frontend");
        await using var inventory = await StartCallerAsync(orders, "inventory");

        Assert.Equal(Answer, await frontend.Client("orders").GetStringAsync("/anything", TestContext.Current.CancellationToken));
        Assert.Equal(1, answered);

        using var denied = await inventory.Client("orders").GetAsync("/anything", TestContext.Current.CancellationToken);
        await AssertDeniedAsync(denied, "svc/inventory", "default action is Deny");

        // A path rule applies to the request's path: frontend may call anything but /api/admin/*.
        using var admin = await frontend.Client("orders").GetAsync("/api/admin/users", TestContext.Current.CancellationToken);
        await AssertDeniedAsync(admin, "svc/frontend", "'no-admin'");
        Assert.Equal(1, answered);

        // Logged and counted like a refusal of a routed request.
        Assert.Contains(orders.Logs.Entries, e => e.EventId.Id == 7001 && e.Message.Contains("svc/inventory", StringComparison.Ordinal));
        Assert.Equal(1, orders.Metrics.Sum("mesh.server.authorization.denials", "mesh.authorization.rule", "default"));
        Assert.Equal(1, orders.Metrics.Sum("mesh.server.authorization.denials", "mesh.authorization.rule", "no-admin"));

        // A caller without a mesh identity (the public endpoint) is refused too; readiness stays open to probes.
        using var browser = new HttpClient { BaseAddress = orders.PublicAddress };
        using var publicDenied = await browser.GetAsync("/anything", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.Forbidden, publicDenied.StatusCode);
        using var ready = await browser.GetAsync("/mesh/ready", TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal(1, answered);
    }

    [Fact]
    public async Task Middleware_beside_routed_endpoints_answers_only_requests_the_policy_allows()
    {
        var answered = 0;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: Rules, map: app =>
        {
            app.MapGet("/api/orders/{id}", (string id) => $"order {id}");
            app.MapGet("/api/admin/secret", () => "secret-data");
            app.Use(async (http, next) =>
            {
                // Answers its own paths, and (a bug in the app) the admin path too, before the endpoint runs.
                if (http.Request.Path.StartsWithSegments("/status") || http.Request.Path.StartsWithSegments("/api/admin"))
                {
                    Interlocked.Increment(ref answered);
                    await http.Response.WriteAsync(Answer);
                    return;
                }

                await next(http);
            });
        });
        await using var frontend = await StartCallerAsync(orders, "frontend");
        await using var inventory = await StartCallerAsync(orders, "inventory");

        Assert.Equal(Answer, await frontend.Client("orders").GetStringAsync("/status", TestContext.Current.CancellationToken));
        Assert.Equal(1, answered);
        using var denied = await inventory.Client("orders").GetAsync("/status", TestContext.Current.CancellationToken);
        await AssertDeniedAsync(denied, "svc/inventory", "default action is Deny");

        // Routed requests are still decided on their endpoint's template...
        Assert.Equal("order 42", await inventory.Client("orders").GetStringAsync("/api/orders/42", TestContext.Current.CancellationToken));

        // ...and a routed request the policy refused is answered with the refusal before the app's middleware can answer it.
        using var admin = await frontend.Client("orders").GetAsync("/api/admin/secret", TestContext.Current.CancellationToken);
        await AssertDeniedAsync(admin, "svc/frontend", "'no-admin'");
        Assert.Equal(1, answered);
    }

    [Fact]
    public async Task An_app_that_authenticates_before_it_routes_keeps_its_template_rules_and_still_guards_unrouted_paths()
    {
        // Calling UseRouting explicitly (without UseAuthentication after it) puts WebApplication's own authentication
        // middleware, where MeshKit's check of unrouted requests runs, before routing.
        var answered = 0;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, settings: Rules, map: app =>
        {
            app.UseRouting();
            app.MapGet("/api/orders/{id}", (string id) => $"order {id}");
            app.Use(async (http, next) =>
            {
                if (http.GetEndpoint() is null)
                {
                    Interlocked.Increment(ref answered);
                    await http.Response.WriteAsync(Answer);
                    return;
                }

                await next(http);
            });
        });
        await using var inventory = await StartCallerAsync(orders, "inventory");

        Assert.Equal("order 42", await inventory.Client("orders").GetStringAsync("/api/orders/42", TestContext.Current.CancellationToken));
        using var denied = await inventory.Client("orders").GetAsync("/status", TestContext.Current.CancellationToken);
        await AssertDeniedAsync(denied, "svc/inventory", "default action is Deny");
        Assert.Equal(0, answered);
    }

    [Fact]
    public async Task Without_an_authorization_section_middleware_answers_every_caller_as_before()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app =>
            app.Run(http => http.Response.WriteAsync(Answer)));
        await using var inventory = await StartCallerAsync(orders, "inventory");

        Assert.Equal(Answer, await inventory.Client("orders").GetStringAsync("/anything", TestContext.Current.CancellationToken));
        using var browser = new HttpClient { BaseAddress = orders.PublicAddress };
        Assert.Equal(Answer, await browser.GetStringAsync("/anything", TestContext.Current.CancellationToken));
    }

    private static async Task AssertDeniedAsync(HttpResponseMessage response, string caller, string reason)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, $"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal("mesh_authorization_denied", problem.GetProperty("reason").GetString());
        Assert.Contains(caller, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains(reason, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Answer, body, StringComparison.Ordinal);
    }

    private Task<MeshAppHost> StartCallerAsync(MeshAppHost orders, string service) =>
        MeshAppHost.StartAsync(bed.ControlPlane, service, MeshTestBed.Token,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")), meshEndpoint: false,
            configureServices: s => s.AddMeshClient("orders"));
}
