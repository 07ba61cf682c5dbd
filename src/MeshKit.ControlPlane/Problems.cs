namespace MeshKit.ControlPlane;

/// <summary>Refusals as problem+json: a status, a machine-readable <c>reason</c>, and a detail that says what to do.</summary>
internal static class Problems
{
    public const string TypePrefix = "urn:meshkit:problem:";

    public static IResult Refuse(int status, string reason, string detail, IEnumerable<KeyValuePair<string, object?>>? extensions = null)
    {
        var fields = new Dictionary<string, object?> { ["reason"] = reason };
        foreach (var (name, value) in extensions ?? [])
        {
            fields[name] = value;
        }

        return Results.Problem(
            detail: detail,
            statusCode: status,
            title: Title(status),
            type: TypePrefix + reason,
            extensions: fields);
    }

    private static string Title(int status) => status switch
    {
        StatusCodes.Status400BadRequest => "The request is not valid.",
        StatusCodes.Status401Unauthorized => "The caller is not authenticated.",
        StatusCodes.Status403Forbidden => "The caller may not do this.",
        StatusCodes.Status404NotFound => "Not found.",
        StatusCodes.Status409Conflict => "The request conflicts with the current state.",
        StatusCodes.Status413PayloadTooLarge => "The request body is too large.",
        _ => "The request was refused.",
    };
}
