using System.Diagnostics;
using System.Net;
using System.Reflection;
using MeshKit.Hosting;
using MeshKit.Policy;
using MeshKit.Testing;
using MeshKit.Tests.Authorization;
using MeshKit.Tests.Identity;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MeshKit.Tests.Hosting;

/// <summary>
/// <c>AddMesh()</c> changes nothing of the host beyond its own services: no process-wide switch, the app's <c>urls</c> and
/// configuration sources as they were, OpenTelemetry only where the app has none, and the same outcome whether Aspire's
/// ServiceDefaults come before or after it.
/// </summary>
[Trait("Area", "Hosting")]
public sealed class LibraryMannersTests(MeshTestBed bed) : IClassFixture<MeshTestBed>, IDisposable
{
    private const string AutoDefaultSwitch = "Microsoft.AspNetCore.Authentication.SuppressAutoDefaultScheme";
    private readonly TempDirectory _folder = new("manners");

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task AddMesh_sets_no_process_wide_switch_and_the_Mesh_scheme_is_no_default_scheme()
    {
        var builder = CreateBuilder();
        builder.AddMesh();
        await using var app = builder.Build();

        Assert.False(AppContext.TryGetSwitch(AutoDefaultSwitch, out var on) && on, $"AddMesh set the process-wide switch {AutoDefaultSwitch}.");
        var schemes = app.Services.GetRequiredService<IAuthenticationSchemeProvider>();
        Assert.NotNull(await schemes.GetSchemeAsync("Mesh"));
        Assert.Null(await schemes.GetDefaultAuthenticateSchemeAsync());
        Assert.Null(await schemes.GetDefaultChallengeSchemeAsync());
        Assert.Null(await schemes.GetDefaultForbidSchemeAsync());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_app_whose_only_scheme_is_its_own_keeps_it_as_default(bool ownSchemeFirst)
    {
        var builder = CreateBuilder();
        if (ownSchemeFirst)
        {
            builder.Services.AddAuthenticationCore(o => o.AddScheme<OwnHandler>("Bearer", "Bearer"));
        }

        builder.AddMesh();
        if (!ownSchemeFirst)
        {
            builder.Services.AddAuthenticationCore(o => o.AddScheme<OwnHandler>("Bearer", "Bearer"));
        }

        await using var app = builder.Build();

        var schemes = app.Services.GetRequiredService<IAuthenticationSchemeProvider>();
        Assert.Equal("Bearer", (await schemes.GetDefaultAuthenticateSchemeAsync())?.Name);
        Assert.Equal("Bearer", (await schemes.GetDefaultChallengeSchemeAsync())?.Name);
    }

    [Fact]
    public async Task Neither_a_public_nor_a_mesh_request_is_authenticated_by_the_Mesh_scheme_unless_asked()
    {
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: app =>
            app.MapGet("/who", (HttpContext http) => http.User.Identity?.AuthenticationType ?? "anonymous"));
        using var publicClient = new HttpClient();
        Assert.Equal("anonymous", await publicClient.GetStringAsync(new Uri(orders.PublicAddress, "/who"), TestContext.Current.CancellationToken));

        // On the mesh endpoint too: HttpContext.User stays the app's own; the Mesh scheme runs only when a policy names it.
        await using var frontend = await MeshAppHost.StartAsync(bed.ControlPlane, "frontend", MeshTestBed.Token, meshEndpoint: false,
            settings: new Dictionary<string, string?>(orders.AsStaticEndpoint("orders")), configureServices: s => s.AddMeshClient("orders"));
        var mesh = frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("orders");
        Assert.Equal("anonymous", await mesh.GetStringAsync("/who", TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task The_apps_urls_stay_in_its_configuration_and_stay_bound_without_a_warning()
    {
        string? afterAddMesh = null;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            addOns: b => afterAddMesh = b.Configuration["urls"],
            map: app => app.MapGet("/hello", () => "hello"));

        Assert.Equal("http://127.0.0.1:0", afterAddMesh);
        Assert.Equal("http://127.0.0.1:0", orders.Services.GetRequiredService<IConfiguration>()["urls"]);
        using var http = new HttpClient();
        Assert.Equal("hello", await http.GetStringAsync(new Uri(orders.PublicAddress, "/hello"), TestContext.Current.CancellationToken));
        Assert.DoesNotContain(orders.Logs.Entries, e => e.Message.Contains("Overriding address", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_apps_file_sources_keep_their_own_OnLoadException()
    {
        var builder = CreateBuilder();
        var own = Write("own.json", "{}");
        var plain = Write("plain.json", "{}");
        Action<FileLoadExceptionContext> handler = context => context.Ignore = true;
        builder.Configuration.AddJsonFile(own, optional: false, reloadOnChange: true);
        var ownSource = (FileConfigurationSource)builder.Configuration.Sources[^1];
        ownSource.OnLoadException = handler;
        builder.Configuration.AddJsonFile(plain, optional: false, reloadOnChange: true);

        builder.AddMesh();
        await using var app = builder.Build();
        _ = app.Services.GetRequiredService<PolicyWatcher>();

        Assert.Same(handler, ownSource.OnLoadException);
        Assert.All(builder.Configuration.Sources.OfType<FileConfigurationSource>().Where(s => s != ownSource), s => Assert.Null(s.OnLoadException));
    }

    [Fact]
    public async Task A_broken_reload_reaches_the_apps_own_handler_and_the_policy_stays_with_its_reason()
    {
        const string DenyRules = """
            { "Mesh": { "Authorization": { "DefaultAction": "Deny", "Rules": [
              { "Name": "frontend-reads-orders", "From": { "Services": [ "frontend" ] }, "To": { "Paths": [ "/api/*" ] } } ] } } }
            """;
        var file = Write("appsettings.json", DenyRules);
        var calls = 0;
        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token, map: AuthorizationTests.MapOrders, jsonFile: file,
            addOns: b =>
            {
                var source = b.Configuration.Sources.OfType<JsonConfigurationSource>().Single(s => s.FileProvider?.GetFileInfo(s.Path!).PhysicalPath == file);
                source.OnLoadException = context =>
                {
                    Interlocked.Increment(ref calls);
                    context.Ignore = true;
                };
            });
        var watcher = orders.Services.GetRequiredService<PolicyWatcher>();
        var version = watcher.Current.Version;

        await File.WriteAllTextAsync(file, DenyRules[..(DenyRules.Length / 2)], TestContext.Current.CancellationToken);
        await Eventually.WaitAsync(
            () => Volatile.Read(ref calls) >= 1 && watcher.LastRejection.Any(e => e.Message.Contains("failed to load", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10),
            "the app's handler to be called and MeshKit to reject the reload with its reason");

        Assert.Equal(version, watcher.Current.Version);
        Assert.True(watcher.Current.Authorization.Enabled);
    }

    [Fact]
    public async Task An_app_without_OpenTelemetry_of_its_own_gets_providers_from_MeshKit_and_none_in_its_services()
    {
        var builder = CreateBuilder();
        builder.AddMesh();
        await using var app = builder.Build();
        var providers = app.Services.GetRequiredService<MeshOpenTelemetryProviders>();
        await providers.StartAsync(TestContext.Current.CancellationToken);

        Assert.Null(app.Services.GetService<TracerProvider>());
        Assert.Null(app.Services.GetService<MeterProvider>());
        var instrumentation = Instrumentations(providers.Tracing);
        Assert.Single(instrumentation, n => n.Contains("AspNetCore", StringComparison.Ordinal));
        Assert.Single(instrumentation, n => n.Contains("HttpClient", StringComparison.Ordinal));
        Assert.NotNull(providers.Metrics);
    }

    [Fact]
    public async Task Mesh_settings_read_outside_the_options_can_be_set_from_code()
    {
        var builder = CreateBuilder();
        builder.AddMesh(o => o.Telemetry.ConfigureOpenTelemetry = false);
        await using var app = builder.Build();
        var providers = app.Services.GetRequiredService<MeshOpenTelemetryProviders>();
        await providers.StartAsync(TestContext.Current.CancellationToken);
        Assert.Null(providers.Tracing);
        Assert.Null(providers.Metrics);

        await using var orders = await MeshAppHost.StartAsync(bed.ControlPlane, "orders", MeshTestBed.Token,
            configureServices: s => s.Configure<MeshOptions>(o => o.Health.ReadinessPath = "/ready-from-code"));
        using var http = new HttpClient();
        var fromCode = await http.GetAsync(new Uri(orders.PublicAddress, "/ready-from-code"), TestContext.Current.CancellationToken);
        Assert.NotEqual(HttpStatusCode.NotFound, fromCode.StatusCode);
        var configured = await http.GetAsync(new Uri(orders.PublicAddress, "/mesh/ready"), TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.NotFound, configured.StatusCode);
    }

    [Fact]
    public async Task ServiceDefaults_before_or_after_AddMesh_give_the_same_host()
    {
        var before = await OutcomeAsync(defaultsFirst: true);
        var after = await OutcomeAsync(defaultsFirst: false);

        Assert.Equal(before.Handlers, after.Handlers);
        Assert.Equal(before.TraceInstrumentation, after.TraceInstrumentation);
        Assert.Equal(before.MeterInstrumentation, after.MeterInstrumentation);
        Assert.Equal(before, after with { Handlers = before.Handlers, TraceInstrumentation = before.TraceInstrumentation, MeterInstrumentation = before.MeterInstrumentation });

        // The mesh client keeps neither the standard resilience handler nor service discovery's handler.
        Assert.DoesNotContain(before.Handlers, h => h.StartsWith("Microsoft.Extensions.Http.Resilience", StringComparison.Ordinal));
        Assert.DoesNotContain(before.Handlers, h => h.StartsWith("Microsoft.Extensions.ServiceDiscovery", StringComparison.Ordinal));
        Assert.Contains(before.Handlers, h => h.EndsWith("MeshClientHandler", StringComparison.Ordinal));

        // ServiceDefaults' instrumentation, once; MeshKit's source in its provider; one OTLP exporter; no provider of MeshKit's.
        Assert.Single(before.TraceInstrumentation, n => n.Contains("AspNetCore", StringComparison.Ordinal));
        Assert.Single(before.TraceInstrumentation, n => n.Contains("HttpClient", StringComparison.Ordinal));
        Assert.True(before.MeshSourceExported);
        Assert.Equal(1, before.BatchExporters);
        Assert.False(before.MeshBuiltProviders);
    }

    /// <summary>A host with ServiceDefaults-style setup before or after AddMesh, and a mesh client; what came of it.</summary>
    private async Task<Outcome> OutcomeAsync(bool defaultsFirst)
    {
        var builder = CreateBuilder();
        builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4317";
        var exported = new List<Activity>();
        if (defaultsFirst)
        {
            builder.AddServiceDefaults(t => t.AddInMemoryExporter(exported));
        }

        builder.AddMesh();
        builder.Services.AddMeshClient("orders");
        if (!defaultsFirst)
        {
            builder.AddServiceDefaults(t => t.AddInMemoryExporter(exported));
        }

        await using var app = builder.Build();
        List<string> handlers = [];
        for (HttpMessageHandler? handler = app.Services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler("orders");
            handler is not null;
            handler = (handler as DelegatingHandler)?.InnerHandler)
        {
            handlers.Add(handler.GetType().FullName!);
        }

        var tracing = app.Services.GetRequiredService<TracerProvider>();
        var metrics = app.Services.GetRequiredService<MeterProvider>();
        using (var source = new ActivitySource(MeshKit.Telemetry.MeshTelemetry.SourceName))
        {
            source.StartActivity("manners-probe")?.Dispose();
        }

        tracing.ForceFlush();
        var providers = app.Services.GetRequiredService<MeshOpenTelemetryProviders>();
        await providers.StartAsync(TestContext.Current.CancellationToken);
        return new Outcome(
            handlers,
            [.. Instrumentations(tracing).Order(StringComparer.Ordinal)],
            [.. Instrumentations(metrics).Order(StringComparer.Ordinal)],
            Processors(Member(tracing, "Processor")).Count(p => p.GetType().Name.StartsWith("BatchActivityExportProcessor", StringComparison.Ordinal)),
            exported.Any(a => a.DisplayName == "manners-probe"),
            providers.Tracing is not null || providers.Metrics is not null);
    }

    private static WebApplicationBuilder CreateBuilder()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Service:Name"] = "frontend",
            ["Mesh:TrustDomain"] = ControlPlaneHost.TrustDomain,
            ["Mesh:ControlPlane:Address"] = "https://127.0.0.1:1",
            ["Mesh:ControlPlane:JoinToken"] = MeshTestBed.Token,
            ["Mesh:ControlPlane:TrustBundlePath"] = "trust-bundle.pem",
            ["Mesh:ControlPlane:StateDirectory"] = string.Empty,
        });
        return builder;
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_folder.Path, name);
        File.WriteAllText(path, content);
        return path;
    }

    // OpenTelemetry keeps a provider's instrumentation and processors internal; the tests read them to count them.
    private static IEnumerable<string> Instrumentations(object? provider) =>
        Member(provider, "Instrumentations") is System.Collections.IEnumerable items ? items.Cast<object>().Select(i => i.GetType().Name) : [];

    private static IEnumerable<object> Processors(object? processor)
    {
        if (processor is null)
        {
            yield break;
        }

        if (Member(processor, "Head") is not { } node)
        {
            yield return processor;
            yield break;
        }

        for (; node is not null; node = Member(node, "Next"))
        {
            foreach (var inner in Processors(Member(node, "Value")))
            {
                yield return inner;
            }
        }
    }

    private static object? Member(object? target, string name)
    {
        const BindingFlags Any = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        for (var type = target?.GetType(); type is not null; type = type.BaseType)
        {
            if (type.GetField(name, Any) is { } field)
            {
                return field.GetValue(target);
            }

            if (type.GetProperty(name, Any) is { } property)
            {
                return property.GetValue(target);
            }
        }

        return null;
    }

    private sealed record Outcome(
        IReadOnlyList<string> Handlers,
        IReadOnlyList<string> TraceInstrumentation,
        IReadOnlyList<string> MeterInstrumentation,
        int BatchExporters,
        bool MeshSourceExported,
        bool MeshBuiltProviders);

    private sealed class OwnHandler : IAuthenticationHandler
    {
        public Task InitializeAsync(AuthenticationScheme scheme, HttpContext context) => Task.CompletedTask;

        public Task<AuthenticateResult> AuthenticateAsync() => Task.FromResult(AuthenticateResult.NoResult());

        public Task ChallengeAsync(AuthenticationProperties? properties) => Task.CompletedTask;

        public Task ForbidAsync(AuthenticationProperties? properties) => Task.CompletedTask;
    }
}
