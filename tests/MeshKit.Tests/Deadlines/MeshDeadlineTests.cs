using MeshKit.Deadlines;
using MeshKit.Resilience;
using Microsoft.Extensions.Time.Testing;

namespace MeshKit.Tests.Deadlines;

/// <summary>Deadline arithmetic on a virtual clock (the propagation along a real call chain is in Traffic/ResilienceTests).</summary>
[Trait("Area", "Traffic")]
public sealed class MeshDeadlineTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public async Task The_time_left_of_an_incoming_deadline_shrinks_with_the_mesh_clock_and_stops_at_zero()
    {
        // In a flow of its own, as each incoming request is: the deadline is an AsyncLocal.
        await Task.Run(() =>
        {
            Assert.Null(MeshDeadline.Remaining);
            MeshDeadline.SetFromHeader("1500", _time);
            Assert.Equal(TimeSpan.FromMilliseconds(1500), MeshDeadline.Remaining);

            _time.Advance(TimeSpan.FromMilliseconds(1200));
            Assert.Equal(TimeSpan.FromMilliseconds(300), MeshDeadline.Remaining);

            _time.Advance(TimeSpan.FromMilliseconds(301));
            Assert.Equal(TimeSpan.Zero, MeshDeadline.Remaining);
        }, TestContext.Current.CancellationToken);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("soon")]
    [InlineData("-5")]
    [InlineData("0")]
    [InlineData("1.5")]
    [InlineData("86400000")]
    public async Task A_header_that_is_not_a_positive_whole_number_of_milliseconds_under_a_day_sets_no_deadline(string? value)
    {
        await Task.Run(() =>
        {
            MeshDeadline.SetFromHeader(value, _time);
            Assert.Null(MeshDeadline.Remaining);
        }, TestContext.Current.CancellationToken);
    }

    [Fact]
    public void The_header_sent_on_carries_the_whole_milliseconds_left_and_never_less_than_one()
    {
        var deadline = _time.GetTimestamp() + (2 * _time.TimestampFrequency);
        Assert.Equal("2000", MeshDeadline.Format(deadline, _time));

        _time.Advance(TimeSpan.FromMilliseconds(1500.5));
        Assert.Equal("499", MeshDeadline.Format(deadline, _time));

        // Past the deadline the callee still gets one: 1 ms, not 0 (which it would ignore) or a negative value.
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("1", MeshDeadline.Format(deadline, _time));
    }
}
