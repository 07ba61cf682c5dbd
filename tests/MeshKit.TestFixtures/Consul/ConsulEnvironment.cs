namespace MeshKit.Testing.Consul;

/// <summary>
/// Reads the real Consul agent to run contract tests against, from the variables Consul's own CLI uses:
/// <c>CONSUL_HTTP_ADDR</c> (<c>127.0.0.1:8500</c> or <c>http://127.0.0.1:8500</c>), <c>CONSUL_HTTP_SSL</c> and
/// <c>CONSUL_HTTP_TOKEN</c>.
/// </summary>
public static class ConsulEnvironment
{
    /// <summary>The variable naming the real agent's address.</summary>
    public const string AddressVariable = "CONSUL_HTTP_ADDR";

    /// <summary>The variable holding the real agent's ACL token.</summary>
    public const string TokenVariable = "CONSUL_HTTP_TOKEN";

    /// <summary>Gets the real agent's address, or <see langword="null"/> when <c>CONSUL_HTTP_ADDR</c> is not set.</summary>
    public static Uri? RealAgentAddress
    {
        get
        {
            var value = Environment.GetEnvironmentVariable(AddressVariable);
            if (string.IsNullOrWhiteSpace(value))
            {
                return null;
            }

            value = value.Trim();
            if (!value.Contains("://", StringComparison.Ordinal))
            {
                var ssl = string.Equals(Environment.GetEnvironmentVariable("CONSUL_HTTP_SSL"), "true", StringComparison.OrdinalIgnoreCase);
                value = (ssl ? "https://" : "http://") + value;
            }

            return Uri.TryCreate(value, UriKind.Absolute, out var address) ? address : null;
        }
    }

    /// <summary>Gets the real agent's ACL token, or <see langword="null"/>.</summary>
    public static string? RealAgentToken =>
        Environment.GetEnvironmentVariable(TokenVariable) is { Length: > 0 } token ? token : null;
}
