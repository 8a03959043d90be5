"""The Helm chart in charts/: strict lint, offline render, Kubernetes schema validation.

Offline, without a helm binary or a cluster:
- helm-python-sdk (Helm v4 SDK) lints with --strict and renders `helm template`-equivalently for
  several value sets, also proving values.schema.json accepts them;
- every rendered object passes kubernetes-validate --strict for the oldest Kubernetes version
  the chart supports (Chart.yaml kubeVersion >=1.29) and the newest one it bundles (1.37).
  ServiceMonitor and PrometheusRule are CRDs kubernetes-validate has no schema for: they are
  SKIPPED in strict validation and checked here instead (their fields, the selector matching the
  Service, and the rule content through `promtool check rules`);
- bad values are rejected by values.schema.json or by the templates' `fail`;
- the ConfigMap's gateway.yaml is a valid gateway config for app.config.load_config.
"""

from __future__ import annotations

import copy
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._tools import CHART, module, tool

KUBE_VERSIONS = ("1.29.0", "1.37.0")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
RELEASE, NAMESPACE = "oci-gateway", "genai"

_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
_OCI_CONFIG = (
    "[DEFAULT]\nuser=ocid1.user.oc1..aaaa\nfingerprint=11:22:33\n"
    "tenancy=ocid1.tenancy.oc1..aaaa\nregion=us-chicago-1\nkey_file=~/.oci/oci_api_key.pem\n"
)

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "api-key-existing-secret": {
        "oci": {"auth": "api_key", "apiKey": {"existingSecret": "oci-api-key", "profile": "GENAI"}},
        "clientAuth": {"existingSecret": "gateway-client-keys"},
    },
    "api-key-chart-secret": {
        "oci": {"auth": "api_key", "apiKey": {"config": _OCI_CONFIG, "privateKey": _PEM}},
    },
    "workload-identity": {
        "oci": {
            "auth": "workload_identity",
            "region": "eu-frankfurt-1",
            "compartmentId": "ocid1.compartment.oc1..aaaaaaaabbbb",
        },
        "serviceAccount": {"name": "oci-gateway"},
        "clientAuth": {
            "keys": [
                {"id": "alice", "sha256": "ab" * 32},
                {"id": "bob", "key": "bob-secret-key-123", "requests_per_minute": 60},
            ]
        },
        "service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
    },
    "instance-principal-hpa-pdb-netpol": {
        "oci": {"auth": "instance_principal"},
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
        "pdb": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dev"}}}
            ],
            "metricsFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                    }
                }
            ],
        },
        "limits": {"redisUrl": "redis://redis.genai:6379/0"},
        "otel": {"endpoint": "http://otel-collector.observability:4318"},
    },
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "grafanaDashboard": {"enabled": True, "namespace": "monitoring"},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"hosts": ["oci-gateway.example.com"], "secretName": "gw-tls"}],
        },
    },
    "oidc-teams": {
        "clientAuth": {
            "oidc": {
                "issuer": "https://identity.oraclecloud.com/",
                "audience": "oci-gateway",
                "jwksUrl": "https://idcs-0123.identity.oraclecloud.com/admin/v1/SigningCert/jwk",
                "userClaim": "sub",
            },
            "keys": [{"id": "ci", "sha256": "cd" * 32, "team": "platform",
                      "expires": "2030-01-01T00:00:00Z", "budget": {"usd_per_month": 50}}],
        },
        "teams": {"platform": {"models": ["grok-*"], "limits": {"requests_per_minute": 60},
                               "budget": {"usd_per_month": 500}, "oidc_groups": ["eng"]}},
    },
    "anonymous": {"clientAuth": {"allowAnonymous": True}},
    "resource-principal": {
        "oci": {
            "auth": "resource_principal",
            "resourcePrincipal": {"version": "2.1", "existingSecret": "oci-rp"},
        },
        "extraEnv": [{"name": "OCI_RESOURCE_PRINCIPAL_RPST", "value": "/etc/oci-rp/rpst"}],
        "pdb": {"enabled": True, "maxUnavailable": 1},
    },
    "nlb-internal-no-drain": {
        "service": {"type": "LoadBalancer", "oci": {"loadBalancerType": "nlb", "internal": True}},
        "shutdown": {"drainStreams": False},
        "image": {
            "repository": "ord.ocir.io/ns/oci-gateway",
            "tag": "1.2.3",
            "digest": "sha256:" + "0" * 64,
        },
    },
}

BAD_VALUES: dict[str, dict[str, Any]] = {
    "replicas-not-integer": {"replicaCount": "two"},
    "unknown-top-level-key": {"replicas": 3},
    "unknown-auth-mode": {"oci": {"auth": "password"}},
    "api-key-without-secret": {"oci": {"auth": "api_key"}},
    "bad-compartment-ocid": {"oci": {"compartmentId": "my-compartment"}},
    "workload-identity-without-region": {"oci": {"region": ""}},
    "model-without-target": {"models": {"x": {"context_window": 1000}}},
    "model-with-both-targets": {
        "models": {"x": {"model_id": "a", "endpoint_id": "ocid1.generativeaiendpoint.oc1..x"}}
    },
    "unknown-capability": {"models": {"grok-4": {"capabilities": ["telepathy"]}}},
    "idle-timeout-too-short": {"service": {"oci": {"idleTimeoutSeconds": 30}}},
    "bad-service-type": {"service": {"type": "Ingress"}},
    "client-key-without-secret": {"clientAuth": {"keys": [{"id": "alice"}]}},
    "client-key-too-short": {"clientAuth": {"keys": [{"id": "alice", "key": "short"}]}},
    "bad-sha256": {"clientAuth": {"keys": [{"id": "alice", "sha256": "xyz"}]}},
    "workers-zero": {"gateway": {"workers": 0}},
    "bad-log-level": {"gateway": {"logLevel": "chatty"}},
    "bad-digest": {"image": {"digest": "latest"}},
    "grace-shorter-than-delay": {
        "shutdown": {"delaySeconds": 60, "terminationGracePeriodSeconds": 30}
    },
    "bad-redis-url": {"limits": {"redisUrl": "http://redis"}},
    "bad-region": {"oci": {"region": "Chicago"}},
    "oidc-hmac": {"clientAuth": {"oidc": {"issuer": "https://idp.example", "audience": "a",
                                          "algorithms": ["HS256"]}}},
    "key-bad-expiry": {"clientAuth": {"keys": [{"id": "a", "sha256": "ab" * 32,
                                                "expires": "next week"}]}},
    "team-unknown-field": {"teams": {"t": {"model": ["grok-4"]}}},
}


# --------------------------------------------------------------------------- helpers
def _hp() -> Any:
    return module("helm_python")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_render_cache: dict[str, dict[str, str]] = {}


def render(name: str) -> dict[str, str]:
    if name not in _render_cache:
        chart = _hp().Chart.load(str(CHART))
        _render_cache[name] = chart.render(VALUE_SETS[name], name=RELEASE, namespace=NAMESPACE)
    return _render_cache[name]


def objects(name: str) -> list[dict[str, Any]]:
    out = []
    for path, text in render(name).items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {})
                out.append(doc)
    return out


def one(name: str, kind: str) -> dict[str, Any]:
    found = [
        o
        for o in objects(name)
        if o["kind"] == kind and "helm.sh/hook" not in o["metadata"].get("annotations", {})
    ]
    assert len(found) == 1, f"{name}: expected one {kind}, got {len(found)}"
    return found[0]


def kinds(name: str) -> set[str]:
    return {o["kind"] for o in objects(name)}


def container(name: str) -> dict[str, Any]:
    return one(name, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env(name: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(name)["env"]}


def gateway_cm(name: str) -> dict[str, Any]:
    (cm,) = [o for o in objects(name) if o["kind"] == "ConfigMap" and "gateway.yaml" in o["data"]]
    return cm


def gateway_config(name: str) -> dict[str, Any]:
    return yaml.safe_load(gateway_cm(name)["data"]["gateway.yaml"])


# --------------------------------------------------------------------------- lint + validate
@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_strict(name: str) -> None:
    result = _hp().lint(
        str(CHART),
        values=VALUE_SETS[name],
        strict=True,
        namespace=NAMESPACE,
        kube_version="v1.33.0",
    )
    problems = [m for m in result.get("messages") or [] if m["severity"] >= 2]
    assert not result.get("errors") and not problems, json.dumps(result, indent=1)


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_rendered_objects_pass_kubernetes_validate_strict(name: str, kube: str) -> None:
    kv = module("kubernetes_validate")
    checked = 0
    for obj in objects(name):
        if obj["kind"] in CRD_KINDS:
            continue  # no schema bundled; test_monitoring_objects checks them
        try:
            kv.validate(obj, kube, strict=True)
        except kv.ValidationError as err:
            pytest.fail(
                f"{name}: {obj['kind']}/{obj['metadata'].get('name')} on {kube}: "
                f"{err.message} at {list(err.path)}"
            )
        checked += 1
    assert checked >= 4


def test_value_sets_cover_the_optional_objects() -> None:
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap"} <= kinds("defaults")
    assert "Secret" not in kinds("defaults")
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds(
        "instance-principal-hpa-pdb-netpol"
    )
    assert {"ServiceMonitor", "PrometheusRule", "Ingress"} <= kinds("monitoring")
    assert sum(o["kind"] == "ConfigMap" for o in objects("monitoring")) == 2  # + dashboard


# --------------------------------------------------------------------------- gateway config
@pytest.mark.parametrize("name", VALUE_SETS)
def test_configmap_carries_a_valid_gateway_config(name: str, tmp_path: Path) -> None:
    from app import config
    cm = gateway_cm(name)
    path = tmp_path / "gateway.yaml"
    path.write_text(cm["data"]["gateway.yaml"], encoding="utf-8")
    loaded = config.load_config(path)
    values = _merge(yaml.safe_load((CHART / "values.yaml").read_text()), VALUE_SETS[name])
    assert loaded.oci.auth == values["oci"]["auth"]
    assert set(loaded.models) == set(values["models"])
    assert dict(loaded.aliases) == values["aliases"]


def test_bad_gateway_config_is_refused(tmp_path: Path) -> None:
    """The check above is meaningful: the loader does reject a wrong file."""
    from app import config
    data = gateway_config("defaults")
    data["aliases"]["claude-opus-*"] = "no-such-model"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(config.ConfigError, match="no-such-model"):
        config.load_config(path)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_mounts_paths_and_secrets_line_up(name: str) -> None:
    pod = one(name, "Deployment")["spec"]["template"]["spec"]
    c = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert all(m["name"] in volumes for m in c["volumeMounts"])
    assert not any("subPath" in m for m in c["volumeMounts"]), "subPath mounts never update"
    e = env(name)
    cfg_dir = str(Path(e["GATEWAY_CONFIG"]).parent)
    assert (
        volumes[mounts[cfg_dir]["name"]]["configMap"]["name"]
        == gateway_cm(name)["metadata"]["name"]
    )
    assert Path(e["GATEWAY_CONFIG"]).name in gateway_cm(name)["data"]
    assert volumes[mounts["/tmp"]["name"]].get("emptyDir") is not None
    assert volumes[mounts[e["PROMETHEUS_MULTIPROC_DIR"]]["name"]].get("emptyDir") is not None

    rendered_secrets = {o["metadata"]["name"] for o in objects(name) if o["kind"] == "Secret"}
    values = VALUE_SETS[name]
    external = {
        values.get("oci", {}).get("apiKey", {}).get("existingSecret"),
        values.get("clientAuth", {}).get("existingSecret"),
        values.get("oci", {}).get("resourcePrincipal", {}).get("existingSecret"),
    } - {None, ""}
    for vol in volumes.values():
        if "secret" in vol:
            assert vol["secret"]["secretName"] in rendered_secrets | external

    cfg = gateway_config(name)
    keys_file = cfg.get("client_auth", {}).get("api_keys_file")
    if keys_file:
        m = mounts[str(Path(keys_file).parent)]
        secret = volumes[m["name"]]["secret"]["secretName"]
        if secret in rendered_secrets:
            obj = next(o for o in objects(name) if o["metadata"]["name"] == secret)
            keys = yaml.safe_load(obj["stringData"][Path(keys_file).name])
            assert [k["id"] for k in keys["keys"]] == [
                k["id"] for k in values["clientAuth"]["keys"]
            ]
    if cfg["oci"]["auth"] == "api_key":
        for key in ("config_file", "key_file"):
            assert str(Path(cfg["oci"][key]).parent) in mounts
        if name == "api-key-chart-secret":
            secret = next(o for o in objects(name) if o["kind"] == "Secret")
            assert set(secret["data"]) == {"config", "key.pem"}


# --------------------------------------------------------------------------- pod spec
def test_pod_security_probes_and_shutdown() -> None:
    dep = one("defaults", "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    psc, sc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    e = env("defaults")
    assert e["GATEWAY_TIMEOUT"] == "0"
    graceful = int(e["GATEWAY_GRACEFUL_TIMEOUT"])
    assert graceful >= 300
    assert pod["terminationGracePeriodSeconds"] >= graceful
    pre = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[:2] == ["python", "-c"] and int(pre[-3]) >= 5 and int(pre[-2]) >= 300
    assert pod["terminationGracePeriodSeconds"] > int(pre[-3]) + int(pre[-2])
    spread = pod["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    assert all(t["labelSelector"]["matchLabels"] for t in spread)
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_no_drain_uses_a_plain_sleep() -> None:
    pre = container("nlb-internal-no-drain")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre == ["sleep", "10"]
    assert container("nlb-internal-no-drain")["image"] == (
        "ord.ocir.io/ns/oci-gateway:1.2.3@sha256:" + "0" * 64
    )


def _prestop_script() -> tuple[str, list[str]]:
    cmd = container("defaults")["lifecycle"]["preStop"]["exec"]["command"]
    return cmd[2], cmd[3:]


class _Metrics(http.server.BaseHTTPRequestHandler):
    answers: list[str] = []

    def do_GET(self) -> None:
        body = (self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def metrics_server() -> Iterator[tuple[int, type[_Metrics]]]:
    handler = type("H", (_Metrics,), {"answers": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], handler
    srv.shutdown()


def test_prestop_waits_for_open_streams(metrics_server: tuple[int, type[_Metrics]]) -> None:
    port, handler = metrics_server
    busy = (
        '# TYPE gateway_active_streams gauge\ngateway_active_streams{model="grok-4"} 1.0\n'
        'gateway_active_streams{model="command-a"} 0.0\n'
    )
    handler.answers = [busy, busy, 'gateway_active_streams{model="grok-4"} 0.0\n']
    script, _ = _prestop_script()
    done = subprocess.run(
        [sys.executable, "-c", script, "0", "30", str(port)],
        timeout=30,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert handler.answers == ['gateway_active_streams{model="grok-4"} 0.0\n']  # polled 3 times


def test_prestop_gives_up_at_the_limit_and_when_unreachable(
    metrics_server: tuple[int, type[_Metrics]],
) -> None:
    port, handler = metrics_server
    handler.answers = ['gateway_active_streams{model="grok-4"} 3.0\n']
    script, _ = _prestop_script()
    done = subprocess.run([sys.executable, "-c", script, "0", "1", str(port)], timeout=20)
    assert done.returncode == 0
    closed = subprocess.run([sys.executable, "-c", script, "0", "30", "1"], timeout=20)
    assert closed.returncode == 0


# --------------------------------------------------------------------------- auth modes
def test_auth_modes_env_and_service_account() -> None:
    wi = env("workload-identity")
    assert wi["OCI_RESOURCE_PRINCIPAL_VERSION"] == "2.2"
    assert wi["OCI_RESOURCE_PRINCIPAL_REGION"] == "eu-frankfurt-1"
    assert one("workload-identity", "ServiceAccount")["metadata"]["name"] == "oci-gateway"
    wi_pod = one("workload-identity", "Deployment")["spec"]["template"]["spec"]
    assert wi_pod["automountServiceAccountToken"] is True
    assert wi_pod["serviceAccountName"] == "oci-gateway"

    ip = env("instance-principal-hpa-pdb-netpol")
    assert "OCI_RESOURCE_PRINCIPAL_VERSION" not in ip
    assert (
        one("instance-principal-hpa-pdb-netpol", "Deployment")["spec"]["template"]["spec"][
            "automountServiceAccountToken"
        ]
        is False
    )
    assert ip["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"

    rp = env("resource-principal")
    assert rp["OCI_RESOURCE_PRINCIPAL_VERSION"] == "2.1"
    assert rp["OCI_RESOURCE_PRINCIPAL_RPST"] == "/etc/oci-rp/rpst"

    ak = gateway_config("api-key-existing-secret")["oci"]
    assert (ak["config_file"], ak["key_file"], ak["profile"]) == (
        "/etc/oci/config",
        "/etc/oci/key.pem",
        "GENAI",
    )
    assert gateway_config("api-key-existing-secret")["client_auth"]["api_keys_file"] == (
        "/etc/oci-gateway/keys/keys.yaml"
    )
    assert "client_auth" not in gateway_config("defaults")  # no keys: open, NOTES warns

    # a chart-made OCI key and the auth identity (which the gateway will not hot-reload) roll
    # the pods when they change; the reloaded files (gateway.yaml, keys) are not hashed
    def ann(name: str) -> dict[str, str]:
        return one(name, "Deployment")["spec"]["template"]["metadata"]["annotations"]

    assert set(ann("api-key-chart-secret")) == {"checksum/oci-auth", "checksum/oci-api-key"}
    assert set(ann("defaults")) == {"checksum/oci-auth"}
    assert (
        ann("defaults")["checksum/oci-auth"]
        != ann("instance-principal-hpa-pdb-netpol")["checksum/oci-auth"]
    )
    assert ann("defaults")["checksum/oci-auth"] == ann("monitoring")["checksum/oci-auth"]


def test_closed_by_default_and_how_auth_reaches_the_gateway_config(tmp_path: Path) -> None:
    """A default install renders, but the gateway refuses to start it (no client auth with
    real OCI credentials); keys, OIDC, teams and allowAnonymous reach the config file."""
    from app import config

    def load(name: str) -> Any:
        path = tmp_path / f"{name}.yaml"
        path.write_text(gateway_cm(name)["data"]["gateway.yaml"], encoding="utf-8")
        return config.load_config(path)

    with pytest.raises(config.ConfigError, match="allow_anonymous"):
        config.check_client_auth(load("defaults"))
    notes = render("defaults")["oci-gateway/templates/NOTES.txt"]
    assert "REFUSE TO START" in notes and "clientAuth.oidc.issuer" in notes
    assert "python -m app keys create" in notes
    oidc = load("oidc-teams")
    config.check_client_auth(oidc)
    assert oidc.client_auth.oidc is not None
    assert oidc.client_auth.oidc.jwks_url.endswith("/admin/v1/SigningCert/jwk")
    assert oidc.client_auth.api_keys_file == "/etc/oci-gateway/keys/keys.yaml"
    assert oidc.teams["platform"].oidc_groups == ("eng",)
    assert oidc.teams["platform"].limits.requests_per_minute == 60
    anonymous = load("anonymous")
    assert anonymous.client_auth.allow_anonymous is True
    config.check_client_auth(anonymous)
    assert "allowAnonymous" in render("anonymous")["oci-gateway/templates/NOTES.txt"]


def test_metrics_have_their_own_port_off_the_ingress() -> None:
    c = container("monitoring")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "metrics": 9464}
    assert env("monitoring")["GATEWAY_METRICS_PORT"] == "9464"
    svc_ports = {p["name"]: p["targetPort"] for p in one("monitoring", "Service")["spec"]["ports"]}
    assert svc_ports == {"http": "http", "metrics": "metrics"}
    assert one("monitoring", "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    backends = [
        path["backend"]["service"]["port"]
        for rule in one("monitoring", "Ingress")["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends and all(b == {"name": "http"} for b in backends)
    # the preStop drain reads the open streams from the metrics port
    assert c["lifecycle"]["preStop"]["exec"]["command"][-1] == "9464"


def test_oci_load_balancer_annotations() -> None:
    svc = one("workload-identity", "Service")
    ann = svc["metadata"]["annotations"]
    assert int(ann["service.beta.kubernetes.io/oci-load-balancer-connection-idle-timeout"]) >= 600
    assert ann["oci.oraclecloud.com/load-balancer-type"] == "lb"
    assert ann["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"
    assert "annotations" not in one("defaults", "Service")["metadata"]  # ClusterIP: none
    nlb = one("nlb-internal-no-drain", "Service")["metadata"]["annotations"]
    assert nlb["oci-network-load-balancer.oraclecloud.com/internal"] == "true"


def test_hpa_pdb_networkpolicy() -> None:
    name = "instance-principal-hpa-pdb-netpol"
    assert "replicas" not in one(name, "Deployment")["spec"]
    hpa = one(name, "HorizontalPodAutoscaler")["spec"]
    assert {m["resource"]["name"] for m in hpa["metrics"]} == {"cpu", "memory"}
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert one(name, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert one("resource-principal", "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    np = one(name, "NetworkPolicy")["spec"]
    assert np["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(np["ingress"][0]["from"]) == 1  # ingressFrom
    # the metrics port has its own rule: metricsFrom only
    assert np["ingress"][1]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert np["ingress"][1]["from"] == VALUE_SETS[name]["networkPolicy"]["metricsFrom"]
    egress_ports = {p["port"] for rule in np["egress"] for p in rule.get("ports", [])}
    assert {53, 443, 80, 6379, 4317, 4318} <= egress_ports
    assert any(
        b.get("ipBlock", {}).get("cidr") == "169.254.169.254/32"
        for rule in np["egress"]
        for b in rule.get("to", [])
    )


# --------------------------------------------------------------------------- monitoring
def test_monitoring_objects(tmp_path: Path) -> None:
    sm = one("monitoring", "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    svc = one("monitoring", "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] in {p["name"] for p in svc["spec"]["ports"]}
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    # job label = app.kubernetes.io/name = "oci-gateway": what the rules' up{job=~...} expects
    assert svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "oci-gateway"

    pr = one("monitoring", "PrometheusRule")
    rules_file = CHART / "files" / "alerts" / "oci-gateway-rules.yaml"
    assert pr["spec"] == yaml.safe_load(rules_file.read_text())
    assert pr["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = tmp_path / "rules.yaml"
    spec.write_text(yaml.safe_dump(pr["spec"]))
    done = subprocess.run(
        [tool("promtool"), "check", "rules", str(spec)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr

    dash = next(
        o
        for o in objects("monitoring")
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    )
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dash["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((CHART / "files" / "dashboards" / "oci-gateway.json").read_text())
    assert json.loads(dash["data"]["oci-gateway.json"]) == shipped

    ing = one("monitoring", "Ingress")
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


# --------------------------------------------------------------------------- schema
@pytest.mark.parametrize("name", BAD_VALUES)
def test_bad_values_are_rejected(name: str) -> None:
    hp = _hp()
    chart = hp.Chart.load(str(CHART))
    with pytest.raises((hp.HelmValuesError, hp.HelmRenderError)):
        chart.render(BAD_VALUES[name], name=RELEASE, namespace=NAMESPACE)


def test_values_yaml_matches_schema_with_check_jsonschema() -> None:
    done = subprocess.run(
        [
            tool("check-jsonschema"),
            "--schemafile",
            str(CHART / "values.schema.json"),
            str(CHART / "values.yaml"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --------------------------------------------------------------------------- NOTES
def test_notes_tell_how_to_point_claude_code_at_the_release() -> None:
    notes = render("workload-identity")["oci-gateway/templates/NOTES.txt"]
    for needle in (
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_DEFAULT_OPUS_MODEL=grok-4.20",
        "ANTHROPIC_DEFAULT_SONNET_MODEL=grok-4.20",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL=gpt-oss-120b",
        "CLAUDE_CODE_SUBAGENT_MODEL=grok-4.20",
        "CLAUDE_CODE_MAX_CONTEXT_TOKENS=128000",  # gpt-oss-120b's, the smallest
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "loadBalancer.ingress",
    ):
        assert needle in notes, needle
    assert "WARNING: no client API keys" not in notes
    defaults = render("defaults")["oci-gateway/templates/NOTES.txt"]
    assert "WARNING: no client API keys" in defaults
    assert "oci.compartmentId is still the example value" in defaults
    assert "port-forward" in defaults
