namespace MeshKit.Hosting.Aspire;

/// <summary>The same naming rules as MeshKit's: service and namespace names are DNS labels; checked when the AppHost is built.</summary>
internal static class MeshNames
{
    public const string DefaultNamespace = "default";
    public const string ReservedNamespace = "mesh-system";

    public static void ThrowIfInvalidLabel(string value, string parameter, string what)
    {
        if (!IsDnsLabel(value))
        {
            throw new ArgumentException($"The mesh {what} '{value}' is not a DNS label; use 1 to 63 lowercase letters, digits and inner '-' (for example 'orders').", parameter);
        }
    }

    public static void ThrowIfInvalidTrustDomain(string value, string parameter)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 255 || !value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '-' or '_'))
        {
            throw new ArgumentException($"The trust domain '{value}' is not valid; use lowercase letters, digits, '.', '-' and '_' (for example 'mesh.local').", parameter);
        }
    }

    public static void ThrowIfInvalidVersion(string value, string parameter)
    {
        if (value.Length is 0 or > 63 || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
        {
            throw new ArgumentException($"The version '{value}' is not valid; use 1 to 63 letters, digits, '.', '-' and '_' (for example 'v2').", parameter);
        }
    }

    private static bool IsDnsLabel(string value) =>
        value.Length is > 0 and <= 63
        && value[0] != '-' && value[^1] != '-'
        && value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');
}
