#!/usr/bin/env bash
# Proof that the packages stand alone: packs every src/ project into a local feed, installs meshkit-control from it with
# `dotnet tool install --tool-path`, builds two services (Ping, Pong) that reference the MeshKit package only (no
# ProjectReference to src/), starts all three on 127.0.0.1 and checks that Ping and Pong call each other over mTLS.
# Fails loudly (non-zero exit, the logs printed) when any step fails. Everything runs in a temporary folder with a private
# NuGet packages folder, so a stale cached MeshKit of the same version can never be used; every process is stopped at exit.
#
#   tests/packages/run.sh              pack (building what is needed), then test
#   tests/packages/run.sh --no-build   pack what `dotnet build MeshKit.sln -c Release` already built (CI)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="${repo}/tests/packages"
no_build=""
[[ "${1:-}" == "--no-build" ]] && no_build="--no-build"

started=${SECONDS}
work="$(mktemp -d)"
pids=()
failed=1
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${failed} -ne 0 ]]; then
    for log in "${work}"/*.log; do [[ -f "$log" ]] && { echo "---- ${log##*/} (last 40 lines)"; tail -n 40 "$log"; }; done
  fi
  rm -rf "${work}"
}
trap cleanup EXIT
fail() { echo "error: stand-alone package test: $*" >&2; exit 1; }
step() { echo "== [$((SECONDS - started)) s] $*"; }

# 1. The local feed: every project under src/ (each packable one makes a package; tools make tool packages).
step "pack src/*/*.csproj into a local feed"
{ echo '<Solution>'; for p in "${repo}"/src/*/*.csproj; do echo "  <Project Path=\"${p}\" />"; done; echo '</Solution>'; } > "${work}/packages.slnx"
dotnet pack "${work}/packages.slnx" -c Release -o "${work}/feed" ${no_build} -nologo -v:q > "${work}/pack.log" 2>&1 || fail "dotnet pack failed"
tool_package="$(ls "${work}/feed"/MeshKit.ControlPlane.*.nupkg 2>/dev/null | head -n 1)"
[[ -n "${tool_package}" ]] || fail "no MeshKit.ControlPlane package in the feed"
version="${tool_package##*/MeshKit.ControlPlane.}"; version="${version%.nupkg}"
for id in MeshKit MeshKit.Abstractions MeshKit.Consul MeshKit.Discovery.Consul MeshKit.Grpc MeshKit.Hosting.Aspire MeshKit.Cli MeshKit.ControlPlane; do
  [[ -f "${work}/feed/${id}.${version}.nupkg" ]] || fail "the feed has no ${id} ${version}"
done
echo "   version ${version}: $(ls "${work}/feed" | grep -c '\.nupkg$') packages"

# 2. The sample, copied out of the repository so that nothing of the repository's build applies, with a nuget.config that
#    takes MeshKit packages from the local feed only and everything else from nuget.org (and, when present, the machine's
#    NuGet cache as a read-only feed, which spares the downloads). A private packages folder: no stale MeshKit.
mkdir -p "${work}/app"
cp -r "${here}/Ping" "${here}/Pong" "${here}/StandAlone.slnx" "${here}/Directory.Build.props" "${here}/Directory.Build.targets" "${here}/Directory.Packages.props" "${work}/app/"
rm -rf "${work}/app"/*/bin "${work}/app"/*/obj
cache_source=""
cache_mapping=""
if [[ -d "${HOME}/.nuget/packages" && -z "${MESHKIT_STANDALONE_NO_CACHE:-}" ]]; then
  cache_source="<add key=\"machine-cache\" value=\"${HOME}/.nuget/packages\" />"
  cache_mapping="<packageSource key=\"machine-cache\"><package pattern=\"*\" /></packageSource>"
fi
cat > "${work}/app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="meshkit-local" value="${work}/feed" />
    ${cache_source}
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <packageSourceMapping>
    <packageSource key="meshkit-local"><package pattern="MeshKit" /><package pattern="MeshKit.*" /></packageSource>
    ${cache_mapping}
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
EOF
export NUGET_PACKAGES="${work}/nuget-packages"

step "dotnet tool install MeshKit.ControlPlane ${version} --tool-path"
(cd "${work}/app" && dotnet tool install MeshKit.ControlPlane --version "${version}" --tool-path "${work}/tools" --configfile "${work}/app/nuget.config") > "${work}/tool-install.log" 2>&1 \
  || fail "dotnet tool install MeshKit.ControlPlane failed"
[[ -x "${work}/tools/meshkit-control" ]] || fail "the tool installed no meshkit-control command"

step "build Ping and Pong against the MeshKit ${version} package"
dotnet build "${work}/app/StandAlone.slnx" -c Release -p:MeshKitVersion="${version}" -nologo -v:q > "${work}/build.log" 2>&1 || fail "the sample does not build from the packages"
if grep -rq '<ProjectReference' "${work}/app"/*/*.csproj; then fail "the sample must not reference src/ projects"; fi
grep -q "\"MeshKit/${version}\"" "${work}/app/Ping/obj/project.assets.json" || fail "Ping did not restore MeshKit ${version} from the feed"

# 3. Ports on 127.0.0.1: the control service takes a free one (port 0, read from its log); the services' four are picked
#    at random among free ones, since each must know the other's mesh port before either starts. They are taken below
#    the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768+ by default): a port picked inside it could be
#    taken as the source port of an outgoing connection before the service binds it (seen once: "address already in use").
ephemeral_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
(( ephemeral_low > 21000 )) || ephemeral_low=32768
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % (ephemeral_low - 20000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null && [[ " ${chosen:-} " != *" ${p} "* ]]; then chosen="${chosen:-} ${p}"; echo "${p}"; return; fi
  done
  fail "no free port found"
}
chosen=""
ping_mesh=$(free_port); chosen="${chosen} ${ping_mesh}"
pong_mesh=$(free_port); chosen="${chosen} ${pong_mesh}"
ping_public=$(free_port); chosen="${chosen} ${ping_public}"
pong_public=$(free_port)

wait_for() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@"; do
    [[ ${SECONDS} -lt ${deadline} ]] || fail "timed out waiting for ${what}"
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "a process exited while waiting for ${what}"; done
    sleep 0.2
  done
}

step "start meshkit-control (from ${work}, not from the tool's folder)"
token="standalone-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
(cd "${work}" && exec "${work}/tools/meshkit-control" --urls https://127.0.0.1:0 \
  --ControlPlane:DataDirectory="${work}/control-plane" \
  --ControlPlane:JoinTokens:standalone:Token="${token}" \
  --ControlPlane:JoinTokens:standalone:Services:0=ping \
  --ControlPlane:JoinTokens:standalone:Services:1=pong) > "${work}/control-plane.log" 2>&1 &
pids+=($!)
listening() { grep -Eo 'Now listening on: https://127\.0\.0\.1:[0-9]+' "${work}/control-plane.log" 2>/dev/null | head -n 1 | grep -Eo '[0-9]+$'; }
has_listener() { [[ -n "$(listening)" ]]; }
wait_for 30 "the control service to listen" has_listener
control_port="$(listening)"
wait_for 10 "the trust bundle" test -f "${work}/control-plane/trust-bundle.pem"

# The defaults travel with the tool: the content root is the tool's own folder, which holds appsettings.json.
content_root="$(sed -n 's/.*Content root path: //p' "${work}/control-plane.log" | head -n 1 | tr -d '\r')"
[[ -n "${content_root}" && -f "${content_root%/}/appsettings.json" ]] || fail "the control service's content root '${content_root}' has no appsettings.json"

start_service() { # name, peer, mesh port, public port, peer mesh port
  (cd "${work}" && exec env \
    Mesh__ControlPlane__Address="https://127.0.0.1:${control_port}" \
    Mesh__ControlPlane__TrustBundlePath="${work}/control-plane/trust-bundle.pem" \
    Mesh__ControlPlane__JoinToken="${token}" \
    Mesh__ControlPlane__StateDirectory="${work}/$1-state" \
    dotnet "${work}/app/${1^}/bin/Release/net10.0/${1^}.dll" --urls "http://127.0.0.1:$4" \
      --Peer="$2" --Mesh:Service:Name="$1" --Mesh:Service:Version=v1 \
      --Mesh:Endpoint:Address=127.0.0.1 --Mesh:Endpoint:Port="$3" \
      --Mesh:Discovery:Static:"$2":0:Address="127.0.0.1:$5") > "${work}/$1.log" 2>&1 &
  pids+=($!)
}
step "start Ping and Pong"
start_service ping pong "${ping_mesh}" "${ping_public}" "${pong_mesh}"
start_service pong ping "${pong_mesh}" "${pong_public}" "${ping_mesh}"

# 4. The calls, each way: the public endpoint calls the peer's mesh endpoint through a mesh client (mTLS, SPIFFE IDs).
answered() { curl -sf --max-time 5 "http://127.0.0.1:$1/call" > "${work}/answer" 2>/dev/null; }
step "Ping calls Pong over mTLS"
wait_for 60 "Ping's call to Pong" answered "${ping_public}"
grep -q "^pong answered spiffe://mesh.local/ns/default/svc/ping over HTTP/2" "${work}/answer" || fail "Ping got an unexpected answer: $(cat "${work}/answer")"
echo "   $(cat "${work}/answer")"
step "Pong calls Ping over mTLS"
wait_for 30 "Pong's call to Ping" answered "${pong_public}"
grep -q "^ping answered spiffe://mesh.local/ns/default/svc/pong over HTTP/2" "${work}/answer" || fail "Pong got an unexpected answer: $(cat "${work}/answer")"
echo "   $(cat "${work}/answer")"

# Without a mesh certificate the mesh endpoint refuses: the call above was mTLS, not plain TLS.
if curl -sk --max-time 5 -o /dev/null "https://127.0.0.1:${pong_mesh}/whoami" 2>/dev/null; then
  fail "Pong's mesh endpoint answered a caller without a client certificate"
fi

failed=0
step "stand-alone package test passed (MeshKit ${version})"
