#!/usr/bin/env bash
# Quickstart: a control service and two tiny services that call each other over mTLS.
# Starts everything on 127.0.0.1, calls the caller's public endpoint, prints the answer, and stops.
set -euo pipefail
cd "$(dirname "$0")/../.."

data="$(mktemp -d)"
token="quickstart-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

for p in samples/Quickstart/Quickstart.Caller samples/Quickstart/Quickstart.Hello src/MeshKit.ControlPlane; do dotnet build "$p" -v q -nologo >/dev/null; done

echo "== control service on https://127.0.0.1:7443 (data in $data)"
dotnet run --no-build --project src/MeshKit.ControlPlane -- --urls https://127.0.0.1:7443 \
  --ControlPlane:DataDirectory="$data" \
  --ControlPlane:JoinTokens:quickstart:Token="$token" \
  --ControlPlane:JoinTokens:quickstart:Services:0=hello \
  --ControlPlane:JoinTokens:quickstart:Services:1=caller > "$data/control-plane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -f "$data/trust-bundle.pem" ]] && curl -sk https://127.0.0.1:7443/healthz >/dev/null 2>&1 && break; sleep 0.2; done

export Mesh__ControlPlane__Address=https://127.0.0.1:7443
export Mesh__ControlPlane__TrustBundlePath="$data/trust-bundle.pem"
export Mesh__ControlPlane__JoinToken="$token"

echo "== hello: mesh endpoint on 127.0.0.1:7101"
Mesh__ControlPlane__StateDirectory="$data/hello" dotnet run --no-build --project samples/Quickstart/Quickstart.Hello --no-launch-profile --urls http://127.0.0.1:7100 > "$data/hello.log" 2>&1 &
pids+=($!)
echo "== caller: public endpoint on http://127.0.0.1:7200"
Mesh__ControlPlane__StateDirectory="$data/caller" dotnet run --no-build --project samples/Quickstart/Quickstart.Caller --no-launch-profile --urls http://127.0.0.1:7200 > "$data/caller.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 150); do curl -s http://127.0.0.1:7200/ >/dev/null 2>&1 && break; sleep 0.2; done
echo "== GET http://127.0.0.1:7200/ (caller -> hello over mTLS):"
curl -s http://127.0.0.1:7200/; echo
echo "== GET http://127.0.0.1:7100/hello straight from outside the mesh (refused):"
curl -s http://127.0.0.1:7100/hello; echo
echo "== workloads the control service knows:"
curl -sk https://127.0.0.1:7443/v1/workloads -H "Authorization: Bearer $(cat "$data/admin-token")"; echo
