#!/usr/bin/env bash
# MeshKit's side-by-side load harness: one command, a full run.
#
#   benchmarks/run.sh        # 9 topologies: first each one alone right after its start, 40 s of 1 s runs at c=64 (its
#                            # warm-up curve); then all of them interleaved x concurrency 1,16,64 x 5 repeats, 10 s each
#                            # after a 10 s warm-up; then the control-service figures (about 8 min: one control
#                            # service, then three replicas; CSR signing, the push to 1,000 then 10,000 watchers).
#                            # About 64 min on 2 cores. The control-service figures alone: --no-load (about 8 min).
#                            # Writes benchmarks/results/latest.json, latest-raw.json and latest.md.
#   benchmarks/run.sh --duration 2 --warmup 1 --repeats 1 --watchers 100 --replicas 1 --concurrency 1,64 --warmup-curve 10 \
#                     --out /tmp/smoke/latest.json                             # a quick smoke run (about 5 min)
#
# Topologies: direct-http, direct-mtls, direct-mtls-h2, direct-mtls-h2-otel (direct-mtls-h2 plus the OpenTelemetry
# tracing and metrics AddMesh() turns on by default, no exporter), meshkit (AddMesh() defaults), meshkit-notrace
# (Mesh:Telemetry:ConfigureOpenTelemetry=false), sidecar-haproxy; and the gRPC pair, where the caller's call to the
# upstream is a gRPC unary call (1 kB reply): direct-grpc-mtls (Grpc.Net.Client over the hand-wired mTLS handler, HTTP/2)
# and meshkit-grpc (AddMesh() + AddMeshGrpcClient<T>, tracing off like direct-grpc-mtls). Besides req/s, latency, CPU
# and peak RSS, every run records the bytes allocated per request by the caller and the upstream (GET /_bench/allocated
# before and after).
#
# Options (passed to the orchestrator, benchmarks/LoadHarness/MeshKit.LoadHarness):
#   --duration S (10)   --warmup S (10, before every measured run)   --repeats N (5)   --concurrency 1,16,64
#   --warmup-curve S (40; 0 = no warm-up curves, every topology started before any load)
#   --topologies direct-http,direct-mtls,direct-mtls-h2,direct-mtls-h2-otel,meshkit,meshkit-notrace,sidecar-haproxy,
#                direct-grpc-mtls,meshkit-grpc
#   --watchers 1000,10000 (the push is measured at each count; each adds watchers to the previous, a connection each)
#   --replicas 1,3 (1: one control service alone; 3: three replicas sharing a Consul double in the orchestrator, each with
#                  its own intermediate from one root, the sign load and the watchers spread over them)
#   --push-rounds N (6)   --csr-concurrency N (16)   --watch-reconnect   --no-control-plane   --no-load
#   --control-plane-setting KEY=VALUE (repeatable; passed to every control service, e.g. a log level, for experiments)
#   --out PATH     (default benchmarks/results/latest.json; latest-raw.json and latest.md are written beside it)
#   --profile      attach dotnet-trace and dotnet-counters to every .NET process (figures are then not results)
#   --report-only  rewrite latest.md from latest.json and latest-raw.json
#
# Installs what it needs (haproxy, wrk) with apt (wrk drives every caller, the gRPC pair's too; Grpc.Tools, which
# carries protoc, comes from NuGet with the build), builds in Release, runs, and kills every process it started. The apps
# get no OTEL_* or Mesh__* variables from this shell, so every topology runs with its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# 1. Tools. A fresh machine has neither; install without starting haproxy's system service.
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if (( ${#missing[@]} > 0 )); then
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  own_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
  [[ -n "$own_policy" ]] && rm -f /usr/sbin/policy-rc.d
  [[ "${status:-0}" == 0 ]] || { echo "error: apt-get install ${missing[*]} failed." >&2; exit 1; }
fi
command -v dotnet >/dev/null 2>&1 || { echo "error: the .NET 10 SDK is required (dotnet not found)." >&2; exit 1; }

# 2. Build, Release: the control service, the caller and upstream apps (their .proto compiled by Grpc.Tools), the orchestrator.
echo "== building (Release)"
for project in src/MeshKit.ControlPlane \
               benchmarks/LoadHarness/MeshKit.LoadHarness.Upstream \
               benchmarks/LoadHarness/MeshKit.LoadHarness.Caller \
               benchmarks/LoadHarness/MeshKit.LoadHarness; do
  timeout 900 dotnet build -c Release -nologo -v q "$project" > "/tmp/meshkit-bench-build.log" 2>&1 \
    || { grep -E "error|Error" "/tmp/meshkit-bench-build.log" | sort -u | head -20 >&2; echo "error: building $project failed." >&2; exit 1; }
done

# 3. Run. Every process the orchestrator starts is written to <work>/logs/pids; the trap ends those (by pid) and the
#    orchestrator itself, whatever way this script exits.
work="$repo/benchmarks/results/tmp/$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$work/logs"
harness_pid=""
cleanup() {
  if [[ -n "$harness_pid" ]] && kill -0 "$harness_pid" 2>/dev/null; then
    kill -TERM "$harness_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$harness_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$harness_pid" 2>/dev/null || true
  fi
  if [[ -f "$work/logs/pids" ]]; then
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$work/logs/pids"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 watchers are 10,000 sockets in the orchestrator and as many in the control service(s): raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < 12000 )); then
  echo "warning: ulimit -n is $(ulimit -n); 10,000 watchers need about 10,100 descriptors per process (use --watchers 1000 or raise it)." >&2
fi

echo "== running (work folder $work)"
# The whole run is bounded: at most 3 hours, whatever the options say.
timeout --signal=TERM 3h dotnet "benchmarks/LoadHarness/MeshKit.LoadHarness/bin/Release/net10.0/MeshKit.LoadHarness.dll" \
  --repo "$repo" --work "$work" --command "benchmarks/run.sh${*:+ $*}" "$@" &
harness_pid=$!
wait "$harness_pid"
