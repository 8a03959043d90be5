#!/usr/bin/env bash
# Container smoke test with a real engine (podman + buildah from Debian; see docs/container.md).
#
#   1. lint the Dockerfile (hadolint)
#   2. build a TEST-ONLY stand-in for the base image (no registry is reachable here:
#      make_standin_base.sh, debootstrap + the host's CPython 3.11) and build the gateway and
#      emulator images from the unchanged Dockerfile with --build-arg PYTHON_IMAGE=<stand-in>
#   3. check the image: non-root user, OCI labels, HEALTHCHECK, no compiler, no pip, size
#   4. run the emulator and the gateway (read-only root fs, /tmp tmpfs, all caps dropped), send a
#      streaming /v1/messages with the anthropic SDK, check /healthz /readyz /metrics, the uid,
#      the read-only root, the HEALTHCHECK and a clean SIGTERM shutdown
#   5. validate docker-compose.yml and start its gateway + oci-emulator services with
#      podman-compose, then run the same client check through them, and let Debian's Prometheus
#      (config/prometheus.yml) scrape that gateway and evaluate the alert rules
#
# usage: tests/deploy/container_smoke.sh        (as root, after .ci/deploy.sh installed the tools)
# env:   PYTHON (default .venv/bin/python), REUSE_STANDIN=1 (keep an existing stand-in image:
#        local iterations only, CI always rebuilds), KEEP_CONTAINERS=1 (no cleanup on exit)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/tests/deploy/containers.conf}
PY=${PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
STANDIN=localhost/python-standin:3.11-slim-bookworm
IMG=localhost/oci-gateway:smoke
EMU_IMG=localhost/oci-gateway-emulator:smoke
NET=ocigw-smoke
GW=ocigw-smoke-gw
EMU=ocigw-smoke-emu
PROJECT=ocigw-smoke
T0=$(date +%s)

log() { printf '\n=== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() {  # url seconds
  local url=$1 deadline=$(( $(date +%s) + $2 ))
  until "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
compose() { "$BIN/podman-compose" -p "$PROJECT" -f docker-compose.yml "$@"; }

cleanup() {
  [ "${KEEP_CONTAINERS:-0}" = 1 ] && return 0
  set +e
  compose down -t 5 > /dev/null 2>&1
  podman rm -f -t 2 "$GW" "$EMU" > /dev/null 2>&1
  podman network rm -f "$NET" > /dev/null 2>&1
}
trap cleanup EXIT
cleanup

command -v podman > /dev/null || fail "podman is not installed (.ci/deploy.sh installs it)"
[ -x "$PY" ] || fail "no python at $PY"

log "hadolint"
"$BIN/hadolint" Dockerfile
echo "hadolint: clean"

log "stand-in base image (test-only)"
if [ "${REUSE_STANDIN:-0}" = 1 ] && podman image exists "$STANDIN"; then
  echo "reusing $STANDIN"
else
  # a CPython 3.11 shared build on the host: the venv's base, else pyenv's newest 3.11
  SP=$("$PY" -c 'import sys; print(sys.base_prefix if sys.version_info[:2] == (3, 11) else "")')
  if [ -z "$SP" ] || [ ! -e "$SP/lib/libpython3.11.so.1.0" ]; then
    SP=$(ls -d /root/.pyenv/versions/3.11.* 2>/dev/null | sort -V | tail -1)
  fi
  STANDIN_PYTHON=$SP bash tests/deploy/make_standin_base.sh "$STANDIN"
fi

log "build gateway image (Dockerfile unchanged, base from --build-arg)"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
podman build --format docker --pull=never \
  --build-arg PYTHON_IMAGE="$STANDIN" --build-arg REVISION="$REV" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$IMG" . > /tmp/ocigw-smoke-build.log 2>&1 || { tail -40 /tmp/ocigw-smoke-build.log; fail "image build"; }
grep -E "OCI SDK: removed" /tmp/ocigw-smoke-build.log || true
log "build emulator image (target oci-emulator)"
podman build --format docker --pull=never --build-arg PYTHON_IMAGE="$STANDIN" \
  --target oci-emulator -t "$EMU_IMG" . > /tmp/ocigw-smoke-build-emu.log 2>&1 \
  || { tail -40 /tmp/ocigw-smoke-build-emu.log; fail "emulator image build"; }

log "image checks"
user=$(podman image inspect "$IMG" --format '{{.Config.User}}')
[ "$user" = "10001:10001" ] || fail "image user is '$user', want 10001:10001"
hc=$(podman image inspect "$IMG" --format '{{json .Config.Healthcheck}}')
case "$hc" in *healthz*) ;; *) fail "no HEALTHCHECK in the image: $hc" ;; esac
for label in title description version revision created licenses source; do
  v=$(podman image inspect "$IMG" --format "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")
  [ -n "$v" ] || fail "label org.opencontainers.image.$label missing"
done
podman run --rm --entrypoint sh "$IMG" -c \
  'for c in gcc cc c++ g++ clang make ld as pip pip3; do if command -v $c >/dev/null; then echo "found $c"; exit 1; fi; done' \
  2>/dev/null || fail "the runtime image has a compiler or pip"
echo "no compiler, no pip; user $user; HEALTHCHECK and OCI labels present"
size=$(podman image inspect "$IMG" --format '{{.Size}}')
base=$(podman image inspect "$STANDIN" --format '{{.Size}}')
echo "image size: $(( size / 1000000 )) MB (stand-in base $(( base / 1000000 )) MB, gateway layers $(( (size - base) / 1000000 )) MB)"
echo "image size compressed (gzip of the image archive): $(podman save --format docker-archive "$IMG" 2>/dev/null | gzip -1 | wc -c | awk '{printf "%d MB", $1/1000000}')"

log "run emulator + gateway (read-only root fs, tmpfs /tmp, no capabilities)"
PORT=$(free_port)
MPORT=$(free_port)  # the metrics listener: its own port (9464 in the container)
podman network create "$NET" > /dev/null
podman run -d --name "$EMU" --network "$NET" --network-alias oci-emulator \
  --read-only --cap-drop ALL --security-opt no-new-privileges "$EMU_IMG" \
  python -m emulator --host 0.0.0.0 --port 9999 --no-verify --quiet \
  --default-delay-between 0.2 > /dev/null 2>&1
podman run -d --name "$GW" --network "$NET" -p "127.0.0.1:$PORT:8000" -p "127.0.0.1:$MPORT:9464" \
  --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,nosuid,nodev,size=64m,mode=1777 \
  --cap-drop ALL --security-opt no-new-privileges \
  -e GATEWAY_OCI_ENDPOINT=http://oci-emulator:9999 -e GATEWAY_WORKERS=2 \
  -e GATEWAY_GRACEFUL_TIMEOUT=20 \
  -v "$ROOT/config:/etc/oci-gateway/config:ro" "$IMG" > /dev/null 2>&1
t_start=$(date +%s.%N)
wait_http "http://127.0.0.1:$PORT/healthz" 60 || { podman logs "$GW" | tail -30; fail "gateway /healthz never answered"; }
echo "gateway answered /healthz $("$PY" -c "import sys,time; print(round(time.time()-float(sys.argv[1]),2))" "$t_start") s after podman run"
"$PY" tests/deploy/smoke_client.py "http://127.0.0.1:$PORT" --metrics-url "http://127.0.0.1:$MPORT/metrics" || { podman logs "$GW" | tail -30; fail "client check (single containers)"; }

uid=$(podman exec "$GW" id -u)
[ "$uid" != 0 ] || fail "gateway runs as root"
echo "gateway runs as uid $uid ($(podman exec "$GW" id -un 2>/dev/null || echo '?'))"
ro=$(podman inspect "$GW" --format '{{.HostConfig.ReadonlyRootfs}}')
[ "$ro" = true ] || fail "root filesystem is not read-only"
if podman exec "$GW" sh -c 'touch /opt/venv/x || touch /etc/x || touch /home/app/x' 2>/dev/null; then
  fail "could write outside /tmp"
fi
podman exec "$GW" sh -c 'touch /tmp/x && ls /tmp/prometheus-multiproc | grep -q .' || fail "/tmp or the metrics dir is not writable"
echo "read-only root fs: writes fail outside /tmp; /tmp and /tmp/prometheus-multiproc are writable"
caps=$(podman exec "$GW" sh -c 'grep CapEff /proc/self/status' | awk '{print $2}')
[ "$caps" = 0000000000000000 ] || fail "effective capabilities $caps"
podman healthcheck run "$GW" 2>/dev/null || fail "HEALTHCHECK failed"
echo "HEALTHCHECK: healthy; effective capabilities: none"

log "graceful shutdown: SIGTERM while a stream is open"
"$PY" tests/deploy/smoke_client.py "http://127.0.0.1:$PORT" --metrics-url "http://127.0.0.1:$MPORT/metrics" --drain-with "podman kill --signal TERM $GW" \
  > /tmp/ocigw-smoke-drain.log 2>&1 || { cat /tmp/ocigw-smoke-drain.log; podman logs "$GW" | tail -20; fail "drain"; }
grep "^drain:" /tmp/ocigw-smoke-drain.log
podman wait "$GW" > /dev/null 2>&1 || true
code=$(podman inspect "$GW" --format '{{.State.ExitCode}}')
echo "gateway exited with code $code after draining"
[ "$code" = 0 ] || { podman logs "$GW" | tail -20; fail "gateway exit code $code on SIGTERM"; }
podman rm -f "$GW" "$EMU" > /dev/null
podman network rm -f "$NET" > /dev/null

log "compose: validate docker-compose.yml (+ live override)"
if [ -x "$BIN/docker-compose" ]; then
  "$BIN/docker-compose" -f docker-compose.yml config -q
  "$BIN/docker-compose" -f docker-compose.yml -f docker-compose.live.yml config -q
  echo "docker compose config: ok"
fi
compose config > /dev/null
echo "podman-compose config: ok"

log "compose: gateway + oci-emulator services"
podman tag "$IMG" localhost/oci-gateway:local
podman tag "$EMU_IMG" localhost/oci-gateway-emulator:local
CPORT=$(free_port)
CMPORT=$(free_port)
GATEWAY_HOST_PORT=$CPORT GATEWAY_METRICS_HOST_PORT=$CMPORT compose up -d gateway oci-emulator > /tmp/ocigw-smoke-compose.log 2>&1 \
  || { cat /tmp/ocigw-smoke-compose.log; fail "compose up"; }
wait_http "http://127.0.0.1:$CPORT/healthz" 60 || { compose logs gateway | tail -30; fail "compose gateway /healthz"; }
"$PY" tests/deploy/smoke_client.py "http://127.0.0.1:$CPORT" --metrics-url "http://127.0.0.1:$CMPORT/metrics" || { compose logs gateway | tail -30; fail "client check (compose)"; }

log "Prometheus (Debian) with config/prometheus.yml scrapes the compose gateway, evaluates the rules"
"$PY" tests/deploy/prom_check.py "127.0.0.1:$CMPORT" || fail "prometheus scrape/rules"
compose down -t 10 > /dev/null 2>&1

log "container smoke: ALL OK in $(( $(date +%s) - T0 )) s"
