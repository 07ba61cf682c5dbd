namespace MeshKit.Policy;

/// <content>Reads gRPC method and service names (<c>Match:Grpc</c> of a route, <c>To:Grpc</c> of an authorization rule).</content>
public static partial class PolicyReader
{
    private const string GrpcNameHelp = "write a gRPC method as 'package.Service/Method' (inventory.v1.Inventory/Reserve), or a whole service as 'package.Service' or 'package.Service/*'";

    /// <summary>
    /// Reads a gRPC name into the path its calls have (<c>/package.Service/Method</c>): a method is one path, a service the
    /// prefix of its methods' paths. A malformed name is an error on its key, never a name that silently matches nothing.
    /// </summary>
    /// <param name="section">The section holding the key, for the error.</param>
    /// <param name="key">The key (or list index) to name in the error; <see langword="null"/> for the section itself.</param>
    /// <param name="value">The name as written.</param>
    /// <param name="path">The path: <c>/package.Service/Method</c> for a method, <c>/package.Service</c> for a service.</param>
    /// <param name="isService">Whether the name is a whole service (its path is a prefix).</param>
    /// <returns>Whether the name is valid.</returns>
    private static bool GrpcName(Section section, string? key, string? value, out string path, out bool isService)
    {
        path = string.Empty;
        isService = false;
        if (string.IsNullOrEmpty(value))
        {
            section.Error(key, $"is {(value is null ? "not a string" : "empty")}; {GrpcNameHelp}.");
            return false;
        }

        if (value.StartsWith('/'))
        {
            section.Error(key, $"is '{value}'; a gRPC name has no leading '/': write '{value.TrimStart('/')}' (or match the path with Path).");
            return false;
        }

        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var service = slash < 0 ? value : value[..slash];
        var method = slash < 0 ? "*" : value[(slash + 1)..];
        if (!IsGrpcServiceName(service, out var why))
        {
            section.Error(key, $"is '{value}': the service name {why}; {GrpcNameHelp}.");
            return false;
        }

        if (method != "*" && !IsProtoIdentifier(method))
        {
            section.Error(key, $"is '{value}': the method '{method}' is not a protobuf name (a letter or '_', then letters, digits or '_'); {GrpcNameHelp}.");
            return false;
        }

        isService = method == "*";
        path = isService ? "/" + service : "/" + service + "/" + method;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="key"/> is written but holds nothing (<c>[]</c>, <c>{}</c> or <c>null</c> in JSON): configuration
    /// keeps such a key without a value, so it does not "exist", yet leaving the match out would match every path.
    /// </summary>
    private static bool IsWrittenEmpty(Section parent, string key)
    {
        foreach (var child in parent.Config.GetChildren())
        {
            if (string.Equals(child.Key, key, StringComparison.OrdinalIgnoreCase))
            {
                return child.Value is null && !child.GetChildren().Any();
            }
        }

        return false;
    }

    /// <summary>A full service name: dot-separated protobuf names, the package's (if any) then the service's.</summary>
    private static bool IsGrpcServiceName(string service, out string why)
    {
        if (service.Length == 0)
        {
            why = "is missing";
            return false;
        }

        foreach (var part in service.Split('.'))
        {
            if (!IsProtoIdentifier(part))
            {
                why = part.Length == 0
                    ? $"'{service}' has an empty part between dots"
                    : $"'{service}' has '{part}', which is not a protobuf name (a letter or '_', then letters, digits or '_')";
                return false;
            }
        }

        why = string.Empty;
        return true;
    }

    private static bool IsProtoIdentifier(string value)
    {
        if (value.Length == 0 || !(char.IsAsciiLetter(value[0]) || value[0] == '_'))
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                return false;
            }
        }

        return true;
    }
}
