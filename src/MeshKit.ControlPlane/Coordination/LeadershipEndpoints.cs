using MeshKit.ControlPlane.Tokens;

namespace MeshKit.ControlPlane.Coordination;

/// <summary><c>GET /v1/leadership</c> (admin token): this replica, whether it leads, and who does.</summary>
internal static class LeadershipEndpoints
{
    public static IEndpointRouteBuilder MapLeadershipAdminApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/v1/leadership", (ReplicaLeadership leadership) =>
        {
            var leader = leadership.Leader;
            return Results.Json(new
            {
                replica = leadership.Self.Replica,
                address = leadership.Self.Address,
                mode = leadership.Elected ? "consul" : "single",
                isLeader = leadership.IsLeader,
                leaderSince = leadership.LeaderSince,
                leader = leader is null ? null : new { replica = leader.Replica, address = leader.Address },
                key = leadership.Key,
                session = leadership.SessionId,
                lockTtl = leadership.Elected ? leadership.LockTtl : (TimeSpan?)null,
                lockDelay = leadership.Elected ? leadership.LockDelay : (TimeSpan?)null,
            });
        }).AddEndpointFilter<AdminEndpointFilter>();
        return endpoints;
    }
}
