using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Shop.Frontend;

/// <summary>Settings of the background traffic generator, under <c>Shop:TrafficGenerator</c>.</summary>
internal sealed class TrafficGeneratorOptions
{
    public const string SectionName = "Shop:TrafficGenerator";

    /// <summary>Gets or sets whether it runs. Default true, so the dashboard has traffic to show.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Gets or sets the orders placed per second. Default 2.</summary>
    public double RequestsPerSecond { get; set; } = 2;

    /// <summary>Gets or sets how many orders it places in all before it stops. Default 3,600 (half an hour at 2 per second).</summary>
    public int MaxRequests { get; set; } = 3_600;
}

/// <summary>
/// Places orders in the background at a steady, low rate so that the dashboard shows traces, the canary split and the
/// golden metrics without anyone clicking. Bounded: at most <see cref="TrafficGeneratorOptions.MaxRequests"/> orders, one
/// at a time, and it stops with the app. Turn it off with <c>Shop:TrafficGenerator:Enabled=false</c>.
/// </summary>
internal sealed partial class TrafficGenerator(OrderPlacement placement, IOptions<TrafficGeneratorOptions> options, IWebHostEnvironment environment, ILogger<TrafficGenerator> logger) : BackgroundService
{
    private static readonly string[] Skus = ["espresso-beans", "oat-milk", "paper-cups", "croissant"];
    private readonly ActivitySource _source = new(environment.ApplicationName);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
        {
            LogOff(logger);
            return;
        }

        LogOn(logger, settings.RequestsPerSecond, settings.MaxRequests);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1 / settings.RequestsPerSecond));
        var failures = 0;
        try
        {
            for (var placed = 0; placed < settings.MaxRequests && await timer.WaitForNextTickAsync(stoppingToken); placed++)
            {
                // A root span of our own, so each generated order is one trace: generated order -> mesh orders -> ... inventory.
                using var activity = _source.StartActivity("generated order", ActivityKind.Internal);
                var order = new NewOrder(Skus[Random.Shared.Next(Skus.Length)], Random.Shared.Next(1, 4));
                var result = await placement.PlaceAsync(order, subset: null, run: null, stoppingToken);
                if (result.Order is null && failures++ % 20 == 0)
                {
                    LogFailed(logger, result.Error);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return;
        }

        LogDone(logger, settings.MaxRequests);
    }

    public override void Dispose()
    {
        _source.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 9001, Level = LogLevel.Information, Message = "The traffic generator is off (Shop:TrafficGenerator:Enabled=false).")]
    private static partial void LogOff(ILogger logger);

    [LoggerMessage(EventId = 9002, Level = LogLevel.Information, Message = "The traffic generator places {Rate} orders per second, {Max} in all; turn it off with Shop:TrafficGenerator:Enabled=false.")]
    private static partial void LogOn(ILogger logger, double rate, int max);

    [LoggerMessage(EventId = 9003, Level = LogLevel.Warning, Message = "A generated order failed (logged once every 20 failures): {Error}")]
    private static partial void LogFailed(ILogger logger, string? error);

    [LoggerMessage(EventId = 9004, Level = LogLevel.Information, Message = "The traffic generator placed its {Max} orders and stopped.")]
    private static partial void LogDone(ILogger logger, int max);
}
