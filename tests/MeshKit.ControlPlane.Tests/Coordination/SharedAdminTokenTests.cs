using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MeshKit.Testing;
using MeshKit.Testing.Consul;

namespace MeshKit.ControlPlane.Tests.Coordination;

/// <summary>
/// One admin token for every replica on Consul: the first replica's token hash is stored in KV (never the token), and the
/// other replicas accept that token besides their own; a token no replica holds is refused everywhere.
/// </summary>
[Trait("Area", "ControlPlaneHA")]
public sealed class SharedAdminTokenTests
{
    private const string FirstToken = "first-replica-admin-token-0123456789";
    private const string SecondToken = "second-replica-admin-token-0123456789";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_first_replicas_admin_token_works_on_every_replica_and_only_its_hash_is_in_Consul()
    {
        await using var consul = await ConsulDouble.StartAsync();
        await using var first = await StartReplicaAsync(consul, FirstToken);
        await Eventually.WaitAsync(async () => await StatusAsync(first, FirstToken) == HttpStatusCode.OK, TimeSpan.FromSeconds(5), "the first replica to answer");
        await Eventually.WaitAsync(async () => (await KvAsync(consul)).ContainsKey("meshkit/admin/token-sha256"), TimeSpan.FromSeconds(5), "the shared hash to be stored");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(FirstToken))), (await KvAsync(consul))["meshkit/admin/token-sha256"]);
        await using var second = await StartReplicaAsync(consul, SecondToken);

        await Eventually.WaitAsync(async () => await StatusAsync(second, FirstToken) == HttpStatusCode.OK, TimeSpan.FromSeconds(10), "the second replica to accept the first's token");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(second, SecondToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(first, SecondToken));
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusAsync(second, "nobodys-admin-token-0123456789"));
        Assert.DoesNotContain((await KvAsync(consul)).Values, v => v.Contains(FirstToken, StringComparison.Ordinal) || v.Contains(SecondToken, StringComparison.Ordinal));
    }

    /// <summary>Every key and value in the double, read through Consul's own API.</summary>
    private static async Task<Dictionary<string, string>> KvAsync(ConsulDouble consul)
    {
        using var http = new HttpClient { BaseAddress = consul.Address };
        using var response = await http.GetAsync("v1/kv/meshkit/?recurse", Ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return [];
        }

        var entries = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        return entries.EnumerateArray().ToDictionary(
            e => e.GetProperty("Key").GetString()!,
            e => e.GetProperty("Value").ValueKind == JsonValueKind.String ? Encoding.UTF8.GetString(Convert.FromBase64String(e.GetProperty("Value").GetString()!)) : string.Empty);
    }

    private static async Task<HttpStatusCode> StatusAsync(ControlPlaneHost replica, string token)
    {
        using var client = replica.CreateClient(bearer: token);
        using var response = await client.GetAsync("v1/workloads", Ct);
        return response.StatusCode;
    }

    private static Task<ControlPlaneHost> StartReplicaAsync(ConsulDouble consul, string token) =>
        ControlPlaneHost.StartAsync(new Dictionary<string, string?>
        {
            ["ControlPlane:Consul:Address"] = consul.Address.ToString(),
            ["ControlPlane:Consul:Wait"] = "00:00:05",
            ["ControlPlane:AdminToken"] = token,
        });
}
