using MeshKit.Transport;
using Polly;
using Polly.RateLimiting;
using Polly.Timeout;

namespace MeshKit.Resilience;

/// <summary>
/// Outer resilience stage: runs the call through its destination's pipeline (total timeout, concurrency limit, budgeted
/// retry). Each attempt goes back through endpoint choice and the per-attempt stage below. Refusals become a
/// <see cref="MeshCallException"/> that says which limit and which setting.
/// </summary>
internal sealed class MeshResilienceHandler(ResiliencePipelines pipelines) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var call = MeshCall.Of(request);
        if (call?.Policy is not { } policy || call.IsMirror)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var pipeline = pipelines.Get(policy, call.Destination.Host);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(ResiliencePipelines.CallKey, call);
        try
        {
            var outcome = await pipeline.ExecuteOutcomeAsync(
                static async (ctx, state) =>
                {
                    var (handler, request) = state;
                    try
                    {
                        return Outcome.FromResult(await handler.SendNextAsync(request, ctx.CancellationToken).ConfigureAwait(ctx.ContinueOnCapturedContext));
                    }
                    catch (Exception ex)
                    {
                        return Outcome.FromException<HttpResponseMessage>(ex);
                    }
                },
                context,
                (this, request)).ConfigureAwait(false);

            if (outcome.Exception is { } exception)
            {
                throw Translate(exception, call, cancellationToken);
            }

            return outcome.Result!;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private Task<HttpResponseMessage> SendNextAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        base.SendAsync(request, cancellationToken);

    private static Exception Translate(Exception exception, MeshCall call, CancellationToken cancellationToken)
    {
        var host = call.Destination.Host;
        var key = $"Mesh:Policy:Destinations:{host}";
        return exception switch
        {
            RateLimiterRejectedException => new MeshCallException(
                "concurrency_limit",
                $"The call to '{host}' was refused at once: {call.Policy!.Concurrency.MaxRequests} requests are under way and the queue of {call.Policy.Concurrency.MaxQueue} is full ({key}:Concurrency).",
                exception),
            TimeoutRejectedException when !cancellationToken.IsCancellationRequested => new MeshCallException(
                "timeout",
                $"The call to '{host}' took longer than its total timeout of {call.Policy!.Timeout} ({key}:Timeout, or the caller's deadline), after {call.Attempt} attempt(s).",
                exception),
            _ => exception,
        };
    }
}
