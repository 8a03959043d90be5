# oci-anthropic-gateway container image.
#
#   docker build -t oci-gateway .                              # the gateway (default, last stage)
#   docker build --target oci-emulator -t oci-gateway-emulator .   # demo upstream for compose only
#
# Stages: build (venv from pinned constraints.txt) -> runtime-base (non-root user + venv)
#         -> oci-emulator (runtime-base + emulator/; never shipped)
#         -> gateway (runtime-base + env, healthcheck, gunicorn; the production image)
# No `# syntax=` line on purpose: it makes BuildKit fetch a frontend image, which fails offline.
#
# The base is pinned by tag and by the digest of its multi-architecture index. Tests build
# with --build-arg PYTHON_IMAGE=<local stand-in> because no registry is reachable there
# (tests/deploy/container_smoke.sh); the Dockerfile itself stays unchanged.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# 1) Dependencies only (cached until constraints.txt changes). Binary wheels only: the image
#    has no compiler, and every pinned dependency ships a manylinux wheel for CPython 3.11.
COPY constraints.txt ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: -r constraints.txt
# 2) The app itself, without touching the resolved dependencies. Only app/ is in this stage, so
#    only the gateway is installed; the project's `oci-emulator` console script is removed
#    because its package (emulator/) is not (the oci-emulator stage runs `python -m emulator`).
COPY pyproject.toml README.md ./
COPY app ./app
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation . \
 && /opt/venv/bin/pip check \
 && rm /opt/venv/bin/oci-emulator \
 && /opt/venv/bin/pip uninstall -y setuptools wheel pip
# 3) Slim the OCI SDK: it ships ~170 service clients (~500 MB with bytecode); the gateway uses
#    only its config loader and signers (oci.auth, oci.signer, oci.config: always kept) and
#    sends the requests itself. Service packages are imported lazily by `oci/__init__.py`,
#    so removing unused ones is safe; keep those below. OCI_SDK_KEEP=all keeps everything.
ARG OCI_SDK_KEEP="generative_ai generative_ai_inference identity identity_data_plane"
RUN /opt/venv/bin/python -c "import os, shutil, oci; \
keep = set(os.environ['OCI_SDK_KEEP'].split()); root = os.path.dirname(oci.__file__); \
lazy = [n for n in oci.__all__ if n not in vars(oci) and os.path.isdir(os.path.join(root, n))]; \
gone = [] if 'all' in keep else [n for n in lazy if n not in keep]; \
[shutil.rmtree(os.path.join(root, n)) for n in gone]; \
print('OCI SDK: removed', len(gone), 'of', len(lazy), 'service packages')" \
 && /opt/venv/bin/python -c "import oci, oci.auth.signers, oci.signer, oci.config, oci.regions, app"

# --------------------------------------------------------------------------- runtime-base
FROM ${PYTHON_IMAGE} AS runtime-base
# Fixed numeric ids so Kubernetes `runAsNonRoot` can verify them and volumes can be chowned.
# The official image ships the stdlib without bytecode; on a read-only root filesystem every
# worker would recompile it at start (app import 2.0 s -> 0.6 s with it, for ~13 MB).
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
            --shell /usr/sbin/nologin app \
 && python -c "import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()['stdlib'], quiet=1, workers=0)"
# The venv belongs to root and is read-only for the app user. Bytecode was compiled at
# install time, so nothing needs to be written next to the code (read-only root fs).
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1
WORKDIR /home/app

# --------------------------------------------------------------------------- oci-emulator
# The OCI Generative AI emulator (emulator/, see emulator/README.md), the demo upstream of
# docker-compose.yml. It needs only aiohttp, cryptography and orjson, all in the venv
# already; it runs from /opt/emulator (the working directory is on sys.path with -m).
FROM runtime-base AS oci-emulator
COPY emulator /opt/emulator/emulator
WORKDIR /opt/emulator
USER 10001:10001
EXPOSE 9999
CMD ["python", "-m", "emulator", "--host", "0.0.0.0", "--port", "9999", "--no-verify"]

# --------------------------------------------------------------------------- gateway
FROM runtime-base AS gateway
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="oci-anthropic-gateway" \
      org.opencontainers.image.description="Anthropic Messages API gateway for OCI Generative AI (FastAPI, gunicorn + uvicorn workers)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/example/oci-anthropic-gateway" \
      org.opencontainers.image.documentation="docs/container.md" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.16-slim-bookworm"
# Runtime knobs (read by app.settings and app.gunicorn_conf). Streams last minutes, so the
# worker timeout is off and the graceful timeout is long; see docs/container.md.
ENV GATEWAY_CONFIG=/etc/oci-gateway/config/gateway.yaml \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8000 \
    GATEWAY_METRICS_PORT=9464 \
    GATEWAY_LOG_LEVEL=info \
    GATEWAY_WORKERS=1 \
    GATEWAY_TIMEOUT=0 \
    GATEWAY_GRACEFUL_TIMEOUT=600 \
    GATEWAY_KEEPALIVE=75 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc
# Writable paths at run time: /tmp only (the metrics dir lives under it). Mount a tmpfs or
# emptyDir there when the root filesystem is read-only.
USER 10001:10001
# 8000: the Anthropic API; 9464: Prometheus metrics (served by the gunicorn master, never on 8000)
EXPOSE 8000 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8000'), timeout=4)"]
CMD ["gunicorn", "-c", "python:app.gunicorn_conf"]
