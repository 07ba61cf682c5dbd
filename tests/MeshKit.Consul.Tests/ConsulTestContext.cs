using System.Security.Cryptography;
using MeshKit.Testing;
using MeshKit.Testing.Consul;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MeshKit.Consul.Tests;

/// <summary>
/// One test's Consul: the double (started for the test) or the real agent named by <c>CONSUL_HTTP_ADDR</c>; clients
/// with short test settings (1 s waits); names unique to the test; and clean-up of what the test registered or wrote,
/// so tests can share a real agent.
/// </summary>
public sealed class ConsulTestContext : IAsyncDisposable
{
    private readonly List<ConsulClient> _clients = [];
    private readonly List<string> _serviceIds = [];
    private readonly List<string> _keys = [];
    private readonly List<string> _sessions = [];
    private readonly ILoggerFactory _loggerFactory;

    private ConsulTestContext(ConsulDouble? consulDouble, Uri address, string? token)
    {
        Double = consulDouble;
        Address = address;
        Token = token;
        _loggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(logging => logging.AddProvider(Logs).SetMinimumLevel(LogLevel.Debug));
    }

    /// <summary>Gets the double, or <see langword="null"/> against a real agent.</summary>
    public ConsulDouble? Double { get; }

    /// <summary>Gets the agent address.</summary>
    public Uri Address { get; }

    /// <summary>Gets the ACL token the clients send.</summary>
    public string? Token { get; }

    /// <summary>Gets what the clients, queries, watchers and registrars logged.</summary>
    public TestLogSink Logs { get; } = new();

    /// <summary>Gets the logger factory that writes to <see cref="Logs"/>.</summary>
    public ILoggerFactory LoggerFactory => _loggerFactory;

    /// <summary>Starts a double for one test.</summary>
    public static async Task<ConsulTestContext> WithDoubleAsync(ConsulDoubleOptions? options = null, string? token = null)
    {
        var consulDouble = await ConsulDouble.StartAsync(options);
        return new ConsulTestContext(consulDouble, consulDouble.Address, token);
    }

    /// <summary>Targets the real agent named by <c>CONSUL_HTTP_ADDR</c>; skips the test when it is not set.</summary>
    public static ConsulTestContext WithRealAgent()
    {
        var address = ConsulEnvironment.RealAgentAddress;
        Assert.SkipWhen(address is null, $"Set {ConsulEnvironment.AddressVariable} (for example http://127.0.0.1:8500 with `consul agent -dev`) to run the Consul contract tests against a real agent.");
        return new ConsulTestContext(null, address!, ConsulEnvironment.RealAgentToken);
    }

    /// <summary>The settings tests use: 1 s waits, short back-off.</summary>
    public ConsulOptions Options(Action<ConsulOptions>? configure = null)
    {
        var options = new ConsulOptions
        {
            Address = Address,
            Token = Token,
            Wait = TimeSpan.FromSeconds(1),
            MinimumQueryInterval = TimeSpan.FromMilliseconds(100),
            RequestTimeout = TimeSpan.FromSeconds(5),
            RetryBaseDelay = TimeSpan.FromMilliseconds(100),
            RetryMaxDelay = TimeSpan.FromSeconds(1),
        };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>Creates a client with the test settings; disposed with the context.</summary>
    public ConsulClient CreateClient(Action<ConsulOptions>? configure = null)
    {
        var client = new ConsulClient(Microsoft.Extensions.Options.Options.Create(Options(configure)), _loggerFactory);
        _clients.Add(client);
        return client;
    }

    /// <summary>Creates a logger for a component under test.</summary>
    public ILogger<T> Logger<T>() => _loggerFactory.CreateLogger<T>();

    /// <summary>Makes a service name unique to this test, so tests can share a real agent.</summary>
    public static string UniqueName(string prefix) => $"{prefix}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    /// <summary>Describes an instance of <paramref name="service"/> and remembers it for clean-up.</summary>
    public ConsulServiceRegistration Instance(
        string service,
        string? address = "10.0.0.1",
        int port = 8443,
        IReadOnlyList<string>? tags = null,
        IReadOnlyDictionary<string, string>? meta = null,
        ConsulTtlCheck? check = null)
    {
        var registration = new ConsulServiceRegistration
        {
            Id = ConsulServiceRegistration.NewInstanceId(service),
            Name = service,
            Address = address,
            Port = port,
            Tags = tags ?? [],
            Meta = meta ?? new Dictionary<string, string>(),
            Check = check,
        };
        _serviceIds.Add(registration.Id);
        return registration;
    }

    /// <summary>Remembers a session for clean-up (destroyed before the keys are deleted).</summary>
    public string Session(string sessionId)
    {
        _sessions.Add(sessionId);
        return sessionId;
    }

    /// <summary>Remembers a KV key for clean-up.</summary>
    public string Key(string name)
    {
        var key = $"meshkit-tests/{UniqueName(name)}";
        _keys.Add(key);
        return key;
    }

    public async ValueTask DisposeAsync()
    {
        if (Double is null || Double.IsRunning)
        {
            using var cleaner = new ConsulClient(Microsoft.Extensions.Options.Options.Create(Options()), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            foreach (var id in _serviceIds)
            {
                try
                {
                    await cleaner.DeregisterServiceAsync(id, timeout.Token);
                }
                catch (ConsulException)
                {
                }
            }

            foreach (var session in _sessions)
            {
                try
                {
                    await cleaner.DestroySessionAsync(session, timeout.Token);
                }
                catch (ConsulException)
                {
                }
            }

            foreach (var key in _keys)
            {
                try
                {
                    await cleaner.DeleteKeyAsync(key, cancellationToken: timeout.Token);
                }
                catch (ConsulException)
                {
                }
            }
        }

        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _loggerFactory.Dispose();
        if (Double is not null)
        {
            await Double.DisposeAsync();
        }
    }
}
