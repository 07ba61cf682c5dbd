namespace MeshKit.Telemetry;

/// <summary>
/// Boxed integers for span tags (attempt counts, HTTP status codes), made once: <c>Activity.SetTag</c> takes an
/// <see cref="object"/>, and boxing an <see cref="int"/> on every call would allocate.
/// </summary>
internal static class TagValues
{
    private static readonly object[] Small = CreateBoxes(600);

    /// <summary>Gets <paramref name="value"/> boxed, from the cache when it is between 0 and 599.</summary>
    public static object Box(int value) => (uint)value < (uint)Small.Length ? Small[value] : value;

    private static object[] CreateBoxes(int count)
    {
        var boxes = new object[count];
        for (var i = 0; i < count; i++)
        {
            boxes[i] = i;
        }

        return boxes;
    }
}
