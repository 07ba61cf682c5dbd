namespace MeshKit.Tests.Hosting;

/// <summary>
/// A <see cref="Random"/> that returns the draws a test scripts, in order (the last one repeats), so a test can put a
/// draw exactly on a boundary: wrap it in a <c>MeshRandom</c>. <see cref="Next(int)"/> draws are checked against their bound.
/// </summary>
internal sealed class ScriptedRandom(params double[] draws) : Random
{
    private int _next;

    /// <summary>Gets how many draws were taken.</summary>
    public int Taken => _next;

    public override double NextDouble() => Take();

    public override int Next(int maxValue)
    {
        var value = (int)(Take() * maxValue);
        Assert.InRange(value, 0, Math.Max(0, maxValue - 1));
        return value;
    }

    private double Take()
    {
        var value = draws[Math.Min(_next, draws.Length - 1)];
        _next++;
        return value;
    }
}
