#!/usr/bin/env bash
# The control service's container image on a machine that cannot reach mcr.microsoft.com and has no container engine
# (this repository's CI machine reaches only NuGet, npm and Debian). NOT part of CI: it needs root (debootstrap, chroot,
# mount) and the Debian packages docker-registry, skopeo, umoci and debootstrap.
#
# 1. Makes a stand-in for mcr.microsoft.com/dotnet/aspnet:10.0: a Debian bookworm minbase root file system (debootstrap)
#    with ca-certificates, libssl3, libicu72, tzdata, plus the ASP.NET Core runtime of the local SDK installation and the
#    user app (uid 1654), as the real image has; packs it as an OCI image (umoci) and pushes it (skopeo) to a local
#    registry (Debian's docker-registry) on 127.0.0.1:5000.
# 2. Builds the image with the SDK's own container support, exactly as where mcr is reachable, but on that base:
#      dotnet publish src/MeshKit.ControlPlane -c Release -t:PublishContainer
#        -p:ContainerBaseImage=localhost:5000/dotnet/aspnet:10.0 -p:ContainerArchiveOutputPath=<out>/meshkit-control.tar
#    (the SDK talks plain HTTP to a localhost registry). The archive is an OCI layout in an uncompressed tar, whatever
#    its file name says; `docker load -i` and `podman load -i` read it.
# 3. Checks the image without an engine: unpacks it (skopeo, umoci), runs its entrypoint under chroot as its user (uid
#    1654) with its environment, and asks https://127.0.0.1:8443/healthz.
#
#   sudo tests/packages/container-offline.sh [output folder, default ./artifacts/container]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
out="$(mkdir -p "${1:-${repo}/artifacts/container}" && cd "${1:-${repo}/artifacts/container}" && pwd)"
work="$(mktemp -d)"
registry_pid=""
run_pid=""
cleanup() {
  set +e
  [[ -n "${run_pid}" ]] && { kill "${run_pid}" 2>/dev/null; wait "${run_pid}" 2>/dev/null; }
  [[ -n "${registry_pid}" ]] && { kill "${registry_pid}" 2>/dev/null; wait "${registry_pid}" 2>/dev/null; }
  for m in proc dev; do mountpoint -q "${work}/image/rootfs/${m}" 2>/dev/null && umount "${work}/image/rootfs/${m}"; done
  # Never delete through a mount that is still there (the bind mount of /dev).
  if grep -q " ${work}/" /proc/mounts; then
    echo "warning: ${work} still has mounts; not removed" >&2
  else
    rm -rf "${work}"
  fi
}
trap cleanup EXIT
fail() { echo "error: $*" >&2; exit 1; }
for tool in debootstrap docker-registry skopeo umoci chroot curl; do
  command -v "${tool}" >/dev/null || fail "${tool} is missing (apt-get install docker-registry skopeo umoci debootstrap)"
done
[[ "$(id -u)" == 0 ]] || fail "run as root (debootstrap, chroot and mount need it)"

echo "== the base image's root file system (debootstrap bookworm minbase, then the local ASP.NET Core runtime)"
rootfs="${work}/base/rootfs"
debootstrap --variant=minbase --include=ca-certificates,libssl3,libicu72,tzdata,libstdc++6,zlib1g,libgcc-s1 \
  bookworm "${rootfs}" http://deb.debian.org/debian > "${work}/debootstrap.log" 2>&1 || { tail -20 "${work}/debootstrap.log"; fail "debootstrap failed"; }
rm -rf "${rootfs}"/var/cache/apt/archives/*.deb "${rootfs}"/var/lib/apt/lists/*
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime="$(ls "${dotnet_root}/shared/Microsoft.AspNetCore.App" | grep '^10\.' | sort -V | tail -n 1)"
netcore="$(ls "${dotnet_root}/shared/Microsoft.NETCore.App" | grep '^10\.' | sort -V | tail -n 1)"
[[ -n "${runtime}" && -n "${netcore}" ]] || fail "no .NET 10 runtime under ${dotnet_root}"
mkdir -p "${rootfs}/usr/share/dotnet/shared/Microsoft.NETCore.App" "${rootfs}/usr/share/dotnet/shared/Microsoft.AspNetCore.App" "${rootfs}/home/app"
cp -a "${dotnet_root}/dotnet" "${dotnet_root}/host" "${rootfs}/usr/share/dotnet/"
cp -a "${dotnet_root}/shared/Microsoft.NETCore.App/${netcore}" "${rootfs}/usr/share/dotnet/shared/Microsoft.NETCore.App/"
cp -a "${dotnet_root}/shared/Microsoft.AspNetCore.App/${runtime}" "${rootfs}/usr/share/dotnet/shared/Microsoft.AspNetCore.App/"
ln -sf /usr/share/dotnet/dotnet "${rootfs}/usr/bin/dotnet"
echo 'app:x:1654:1654::/home/app:/usr/sbin/nologin' >> "${rootfs}/etc/passwd"
echo 'app:x:1654:' >> "${rootfs}/etc/group"
chown 1654:1654 "${rootfs}/home/app"

echo "== pack it as an OCI image and push it to a local registry (127.0.0.1:5000)"
(cd "${work}" && umoci init --layout oci && umoci new --image oci:aspnet && umoci unpack --image oci:aspnet bundle > /dev/null)
rm -rf "${work}/bundle/rootfs" && mv "${rootfs}" "${work}/bundle/rootfs"
(cd "${work}" && umoci repack --image oci:aspnet bundle && umoci config --image oci:aspnet --os linux --architecture amd64 \
  --config.workingdir /app --config.env APP_UID=1654 --config.env ASPNETCORE_HTTP_PORTS=8080 \
  --config.env DOTNET_RUNNING_IN_CONTAINER=true --config.env DOTNET_VERSION="${netcore}" --config.env ASPNET_VERSION="${runtime}" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
cat > "${work}/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: ${work}/registry
http:
  addr: 127.0.0.1:5000
EOF
docker-registry serve "${work}/registry.yml" > "${work}/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do curl -sf http://127.0.0.1:5000/v2/ > /dev/null && break; sleep 0.2; done
skopeo copy --dest-tls-verify=false "oci:${work}/oci:aspnet" docker://127.0.0.1:5000/dotnet/aspnet:10.0 > /dev/null

echo "== dotnet publish -t:PublishContainer on that base"
dotnet publish "${repo}/src/MeshKit.ControlPlane" -c Release -t:PublishContainer -nologo -v:q \
  -p:ContainerBaseImage=localhost:5000/dotnet/aspnet:10.0 -p:ContainerArchiveOutputPath="${out}/meshkit-control.tar"
ls -la "${out}/meshkit-control.tar"

echo "== run the image's entrypoint under chroot as its user, and ask /healthz on 8443"
tag="$(tar xOf "${out}/meshkit-control.tar" index.json | grep -o '"org.opencontainers.image.ref.name":"[^"]*"' | head -n 1 | cut -d'"' -f4)"
skopeo copy "oci-archive:${out}/meshkit-control.tar:${tag}" "oci:${work}/check:cp" > /dev/null
(cd "${work}" && umoci unpack --image check:cp image > /dev/null)
python3 - "${work}/image/config.json" > "${work}/image.env" <<'EOF'
import json, shlex, sys
process = json.load(open(sys.argv[1]))["process"]
for entry in process["env"]:
    name, value = entry.split("=", 1)
    print(f"export {name}={shlex.quote(value)}")
print(f"export IMAGE_USER={process['user']['uid']}:{process['user']['gid']}")
print(f"export IMAGE_CWD={shlex.quote(process['cwd'])}")
print(f"export IMAGE_ARGS={shlex.quote(' '.join(shlex.quote(a) for a in process['args']))}")
EOF
mount -t proc proc "${work}/image/rootfs/proc"
mount --bind /dev "${work}/image/rootfs/dev"
env -i bash -c "source '${work}/image.env'; exec chroot --userspec=\"\${IMAGE_USER}\" '${work}/image/rootfs' sh -c \"cd \${IMAGE_CWD} && exec \${IMAGE_ARGS} --ControlPlane:JoinTokens:check:Token=0123456789abcdef0123456789 --ControlPlane:JoinTokens:check:Services:0=orders\"" > "${work}/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 100); do
  curl -sk --max-time 2 https://127.0.0.1:8443/healthz > /dev/null 2>&1 && break
  kill -0 "${run_pid}" 2>/dev/null || { cat "${work}/run.log"; fail "the image's entrypoint exited"; }
  sleep 0.3
done
curl -sk --max-time 2 https://127.0.0.1:8443/healthz | grep -q ok || { cat "${work}/run.log"; fail "no /healthz on 8443"; }
[[ -f "${work}/image/rootfs/home/app/data/trust-bundle.pem" ]] || fail "no trust bundle in /home/app/data"
echo "== ${out}/meshkit-control.tar (tags: $(tar xOf "${out}/meshkit-control.tar" index.json | grep -o '"org.opencontainers.image.ref.name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')): runs as uid 1654, serves /healthz on 8443"
