using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace MeshKit.Testing.Consul;

/// <summary>The double's HTTP endpoints, each answering as the Consul agent documents it.</summary>
internal static class ConsulDoubleEndpoints
{
    /// <summary>The largest KV value the agent accepts by default (<c>limits.kv_max_value_size</c>, 512 KiB).</summary>
    public const int MaxValueSize = 512 * 1024;

    private static readonly TimeSpan DefaultWait = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan MaxWait = TimeSpan.FromMinutes(10);

    public static void Map(WebApplication app, ConsulDouble consul, ConsulDoubleState state, CancellationToken stopping)
    {
        app.MapGet("/v1/status/leader", () => Results.Text("\"127.0.0.1:8300\"", "application/json"));

        app.MapPut("/v1/agent/service/register", async (HttpContext context) =>
        {
            JsonObject? body;
            try
            {
                body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted).ConfigureAwait(false) as JsonObject;
            }
            catch (JsonException ex)
            {
                return Results.Text($"Request decode failed: {ex.Message}", statusCode: StatusCodes.Status400BadRequest);
            }

            if (body is null)
            {
                return Results.Text("Request decode failed: the body is not a JSON object", statusCode: StatusCodes.Status400BadRequest);
            }

            var error = state.Register(body, DateTimeOffset.UtcNow);
            return error is null ? Results.Ok() : Results.Text($"Invalid service registration: {error}", statusCode: StatusCodes.Status400BadRequest);
        });

        app.MapPut("/v1/agent/service/deregister/{id}", (string id) =>
            state.Deregister(id) ? Results.Ok() : Results.Text($"Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name.", statusCode: StatusCodes.Status404NotFound));

        app.MapPut("/v1/agent/check/{verb}/{id}", async (HttpContext context, string verb, string id) =>
        {
            string status;
            string? output;
            switch (verb)
            {
                case "pass":
                case "warn":
                case "fail":
                    status = verb switch { "pass" => "passing", "warn" => "warning", _ => "critical" };
                    output = context.Request.Query["note"].ToString();
                    break;
                case "update":
                    JsonObject? body;
                    try
                    {
                        body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted).ConfigureAwait(false) as JsonObject;
                    }
                    catch (JsonException ex)
                    {
                        return Results.Text($"Request decode failed: {ex.Message}", statusCode: StatusCodes.Status400BadRequest);
                    }

                    status = body is null ? string.Empty : Json.String(body, "Status") ?? string.Empty;
                    output = body is null ? null : Json.String(body, "Output");
                    if (status is not ("passing" or "warning" or "critical"))
                    {
                        return Results.Text($"Invalid check status: \"{status}\"", statusCode: StatusCodes.Status400BadRequest);
                    }

                    break;
                default:
                    return Results.NotFound();
            }

            return state.UpdateCheck(id, status, output, DateTimeOffset.UtcNow)
                ? Results.Ok()
                : Results.Text($"CheckID \"{id}\" does not have associated TTL", statusCode: StatusCodes.Status404NotFound);
        });

        app.MapGet("/v1/health/service/{name}", async (HttpContext context, string name) =>
        {
            var query = context.Request.Query;
            if (WrongDatacenter(consul, query) is { } wrongDc)
            {
                return wrongDc;
            }

            Func<JsonObject, bool>? filter = null;
            if (query.TryGetValue("filter", out var filterText) && !StringValues.IsNullOrEmpty(filterText))
            {
                filter = ConsulFilterExpression.TryParse(filterText.ToString(), out var error);
                if (filter is null)
                {
                    return Results.Text($"Failed to create boolean expression evaluator: {error}", statusCode: StatusCodes.Status400BadRequest);
                }
            }

            var passing = Flag(query, "passing");
            var tag = query.TryGetValue("tag", out var tagValue) ? tagValue.ToString() : null;
            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, entries) = state.HealthService(name, passing, tag, filter);
                return (index, StatusCodes.Status200OK, entries.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapGet("/v1/catalog/services", async (HttpContext context) =>
        {
            if (WrongDatacenter(consul, context.Request.Query) is { } wrongDc)
            {
                return wrongDc;
            }

            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, services) = state.CatalogServices();
                return (index, StatusCodes.Status200OK, services.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapPut("/v1/session/create", async (HttpContext context) =>
        {
            if (WrongDatacenter(consul, context.Request.Query) is { } wrongDc)
            {
                return wrongDc;
            }

            JsonObject? body = null;
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
            if (buffer.Length > 0)
            {
                try
                {
                    body = JsonNode.Parse(buffer.ToArray()) as JsonObject;
                }
                catch (JsonException ex)
                {
                    return Results.Text($"Request decode failed: {ex.Message}", statusCode: StatusCodes.Status400BadRequest);
                }
            }

            var (id, error) = state.SessionCreate(body, DateTimeOffset.UtcNow);
            return error is null
                ? Results.Text(new JsonObject { ["ID"] = id }.ToJsonString(), "application/json")
                : Results.Text(error, statusCode: error.StartsWith("Request decode", StringComparison.Ordinal) ? StatusCodes.Status400BadRequest : StatusCodes.Status500InternalServerError);
        });

        app.MapPut("/v1/session/renew/{id}", (HttpContext context, string id) =>
        {
            var renewed = state.SessionRenew(id, DateTimeOffset.UtcNow);
            if (renewed is null)
            {
                return Results.Text($"Session id '{id}' not found", statusCode: StatusCodes.Status404NotFound);
            }

            consul.WriteReadHeaders(context.Response, state.ReportedIndex);
            return Results.Text(renewed.ToJsonString(), "application/json");
        });

        app.MapPut("/v1/session/destroy/{id}", (string id) =>
        {
            state.SessionDestroy(id, DateTimeOffset.UtcNow);
            return Results.Text("true", "application/json");
        });

        // Block bodies that return the result: an expression-bodied async lambda taking only HttpContext would bind as a
        // RequestDelegate, and its IResult would never be written.
        app.MapGet("/v1/session/info/{id}", async (HttpContext context, string id) =>
        {
            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, sessions) = state.SessionInfo(id);
                return (index, StatusCodes.Status200OK, sessions.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapGet("/v1/session/list", async (HttpContext context) =>
        {
            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, sessions) = state.SessionList(node: null);
                return (index, StatusCodes.Status200OK, sessions.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapGet("/v1/session/node/{node}", async (HttpContext context, string node) =>
        {
            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, sessions) = state.SessionList(node);
                return (index, StatusCodes.Status200OK, sessions.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapGet("/v1/kv/{**key}", async (HttpContext context, string key) =>
        {
            if (WrongDatacenter(consul, context.Request.Query) is { } wrongDc)
            {
                return wrongDc;
            }

            var recurse = Flag(context.Request.Query, "recurse");
            return await BlockAsync(context, consul, state, stopping, () =>
            {
                var (index, entries) = state.KvGet(key, recurse);
                return entries is null ? (index, StatusCodes.Status404NotFound, string.Empty) : (index, StatusCodes.Status200OK, entries.ToJsonString());
            }).ConfigureAwait(false);
        });

        app.MapPut("/v1/kv/{**key}", async (HttpContext context, string key) =>
        {
            var query = context.Request.Query;
            if (WrongDatacenter(consul, query) is { } wrongDc)
            {
                return wrongDc;
            }

            if (!TryNumber(query, "cas", out var cas) || !TryNumber(query, "flags", out var flags))
            {
                return Results.Text("Invalid cas or flags: give an unsigned integer", statusCode: StatusCodes.Status400BadRequest);
            }

            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);

            // As the agent does: "Values in the KV store cannot be larger than 512kb" (the KV API docs).
            if (buffer.Length > MaxValueSize)
            {
                return Results.Text($"Request body({buffer.Length} bytes) too large, max size: {MaxValueSize} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.", statusCode: StatusCodes.Status413RequestEntityTooLarge);
            }

            // As the agent reads them: release wins over acquire, which wins over cas.
            if (query.ContainsKey("release") || query.ContainsKey("acquire"))
            {
                var release = query.ContainsKey("release");
                var session = (release ? query["release"] : query["acquire"]).ToString();
                var (done, error) = release
                    ? state.KvRelease(key, session, buffer.ToArray(), flags)
                    : state.KvAcquire(key, session, buffer.ToArray(), flags, DateTimeOffset.UtcNow);
                return error is null
                    ? Results.Text(done ? "true" : "false", "application/json")
                    : Results.Text(error, statusCode: StatusCodes.Status500InternalServerError);
            }

            return Results.Text(state.KvPut(key, buffer.ToArray(), cas, flags ?? 0) ? "true" : "false", "application/json");
        });

        app.MapDelete("/v1/kv/{**key}", (HttpContext context, string key) =>
        {
            var query = context.Request.Query;
            if (WrongDatacenter(consul, query) is { } wrongDc)
            {
                return wrongDc;
            }

            if (!TryNumber(query, "cas", out var cas))
            {
                return Results.Text("Invalid cas: give an unsigned integer", statusCode: StatusCodes.Status400BadRequest);
            }

            return Results.Text(state.KvDelete(key, Flag(query, "recurse"), cas) ? "true" : "false", "application/json");
        });
    }

    /// <summary>
    /// Answers a read as Consul's blocking queries do: at once without <c>index</c>; otherwise when the resource's index
    /// passes the requested one or <c>wait</c> (plus up to wait/16 of jitter) elapses.
    /// </summary>
    private static async Task<IResult> BlockAsync(HttpContext context, ConsulDouble consul, ConsulDoubleState state, CancellationToken stopping, Func<(long Index, int Status, string Body)> read)
    {
        var query = context.Request.Query;
        long requested = 0;
        if (query.TryGetValue("index", out var indexText) && !long.TryParse(indexText.ToString(), out requested))
        {
            return Results.Text("Invalid index", statusCode: StatusCodes.Status400BadRequest);
        }

        var wait = DefaultWait;
        if (query.TryGetValue("wait", out var waitText) && !GoDuration.TryParse(waitText.ToString(), out wait))
        {
            return Results.Text("Invalid wait time", statusCode: StatusCodes.Status400BadRequest);
        }

        if (wait > MaxWait)
        {
            wait = MaxWait;
        }

        var deadline = DateTimeOffset.UtcNow + wait + (wait / 16 * Random.Shared.NextDouble());
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var epoch = state.Epoch;
        while (true)
        {
            // Take the change signal before reading, so a write between the two wakes the next wait.
            var changed = state.Changed;
            var (index, status, body) = read();
            var remaining = deadline - DateTimeOffset.UtcNow;
            if (requested <= 0 || index > requested || consul.EarlyReturns || remaining <= TimeSpan.Zero || state.Epoch != epoch)
            {
                consul.WriteReadHeaders(context.Response, index);
                return status == StatusCodes.Status200OK ? Results.Text(body, "application/json") : Results.StatusCode(status);
            }

            await Task.WhenAny(changed, Task.Delay(remaining, cut.Token)).ConfigureAwait(false);
            if (cut.IsCancellationRequested)
            {
                if (stopping.IsCancellationRequested)
                {
                    // The agent went away: the client sees its connection cut, not an answer.
                    context.Abort();
                }

                return Results.Empty;
            }
        }
    }

    private static IResult? WrongDatacenter(ConsulDouble consul, IQueryCollection query) =>
        query.TryGetValue("dc", out var dc) && !StringValues.IsNullOrEmpty(dc) && !string.Equals(dc.ToString(), consul.Options.Datacenter, StringComparison.OrdinalIgnoreCase)
            ? Results.Text("No path to datacenter", statusCode: StatusCodes.Status500InternalServerError)
            : null;

    private static bool Flag(IQueryCollection query, string name)
    {
        if (!query.TryGetValue(name, out var value))
        {
            return false;
        }

        var text = value.ToString();
        return text.Length == 0 || text is "1" || text.Equals("true", StringComparison.OrdinalIgnoreCase);
    }

    private static bool TryNumber(IQueryCollection query, string name, out ulong? value)
    {
        value = null;
        if (!query.TryGetValue(name, out var text))
        {
            return true;
        }

        if (!ulong.TryParse(text.ToString(), out var number))
        {
            return false;
        }

        value = number;
        return true;
    }
}
