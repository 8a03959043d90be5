#!/usr/bin/env bash
# TEST-ONLY: build a local stand-in for the Dockerfile's base image (python:3.11-slim-bookworm).
#
# No container registry is reachable on the CI/dev machines, so `FROM python:...` cannot be
# pulled. This script makes an image with the same layout as the official slim image:
# Debian bookworm (debootstrap minbase from the Debian mirror) + CPython 3.11 in /usr/local
# (copied from the host's shared-library build, e.g. pyenv's), plus the host CA bundle so
# that pip trusts the egress proxy. It is never used for a release: the real Dockerfile is
# unchanged and is built with --build-arg PYTHON_IMAGE=<this tag> by container_smoke.sh.
#
# usage: make_standin_base.sh [TAG]        env: ENGINE (podman), STANDIN_PYTHON (prefix),
#                                               DEBIAN_MIRROR, KEEP_SCRATCH=1
set -euo pipefail
TAG=${1:-localhost/python-standin:3.11-slim-bookworm}
ENGINE=${ENGINE:-podman}
PY=${STANDIN_PYTHON:-$(python3 -c 'import sys; print(sys.base_prefix)')}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
VER=$("$PY/bin/python3" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$VER" = "3.11" ] || { echo "need a CPython 3.11 prefix, got $VER at $PY" >&2; exit 1; }
[ -e "$PY/lib/libpython3.11.so.1.0" ] || { echo "$PY is not an --enable-shared build" >&2; exit 1; }

SCRATCH=$(mktemp -d /tmp/standin.XXXXXX)
cleanup() { [ "${KEEP_SCRATCH:-0}" = 1 ] || rm -rf "$SCRATCH"; }
trap cleanup EXIT
R=$SCRATCH/rootfs
t0=$(date +%s)
# The runtime libraries the official image has for its python build.
debootstrap --variant=minbase \
  --include=ca-certificates,netbase,tzdata,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libncursesw6,libreadline8,zlib1g,libuuid1,libexpat1,libcrypt1,libnsl2,libtirpc3,libgdbm6 \
  bookworm "$R" "$MIRROR" > "$SCRATCH/debootstrap.log" 2>&1 \
  || { tail -30 "$SCRATCH/debootstrap.log"; exit 1; }
echo "debootstrap: $(( $(date +%s) - t0 ))s"

# CPython into /usr/local, as in the official image: stdlib without tests, idle, tkinter and
# without *.pyc (the official Dockerfile deletes test dirs and *.pyc too).
mkdir -p "$R/usr/local/bin" "$R/usr/local/lib"
cp -a "$PY"/lib/libpython3*.so* "$R/usr/local/lib/"
cp -a "$PY/bin/python3.11" "$R/usr/local/bin/"
ln -sf python3.11 "$R/usr/local/bin/python3"
ln -sf python3 "$R/usr/local/bin/python"
tar -C "$PY/lib" -c \
  --exclude='python3.11/site-packages/*' --exclude='python3.11/test' \
  --exclude='python3.11/config-3.11-*' --exclude='python3.11/idlelib' \
  --exclude='python3.11/tkinter' --exclude='python3.11/turtledemo' \
  --exclude='python3.11/lib-dynload/_tkinter*' --exclude='test' --exclude='tests' \
  --exclude='idle_test' --exclude='__pycache__' --exclude='*.pyc' --exclude='*.a' \
  python3.11 | tar -C "$R/usr/local/lib" -x
# libpython's RUNPATH points at the host prefix, absent here: ld.so falls back to its cache.
chroot "$R" /sbin/ldconfig
# Test-only: trust the egress proxy's CA inside builds (see deploy-tooling 1c).
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/* \
       "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/info/* "$R"/usr/share/locale/*
chroot "$R" /usr/local/bin/python3 -B -c 'import ssl, sqlite3, ctypes, venv, ensurepip, zlib, lzma, bz2, uuid; print("stand-in python ok")'

tar -C "$R" -c . | "$ENGINE" import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["python3"]' \
  - "$TAG" > /dev/null 2>&1
echo "stand-in base $TAG built in $(( $(date +%s) - t0 ))s"
