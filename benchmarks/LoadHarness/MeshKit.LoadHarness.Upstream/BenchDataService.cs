using Google.Protobuf;
using Grpc.Core;
using MeshKit.LoadHarness.Grpc;

namespace MeshKit.LoadHarness.Upstream;

/// <summary>
/// The gRPC pair's service: <c>BenchData/Get</c> answers the same 1 kB as <c>GET /data</c>. The reply is built once and
/// shared (a message is only read while it is serialized), as the HTTP route shares its byte array, so both topologies of
/// the pair measure the call, not the service.
/// </summary>
internal sealed class BenchDataService : BenchData.BenchDataBase
{
    private static readonly Task<DataReply> Reply = Task.FromResult(new DataReply { Payload = UnsafeByteOperations.UnsafeWrap(CreatePayload()) });

    /// <summary>The 1 kB every topology's upstream answers.</summary>
    public static byte[] CreatePayload()
    {
        var payload = new byte[1024];
        Array.Fill(payload, (byte)'x');
        return payload;
    }

    public override Task<DataReply> Get(DataRequest request, ServerCallContext context) => Reply;
}
