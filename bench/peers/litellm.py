"""LiteLLM's proxy as a benchmark peer: installed once in its own virtual environment, its OCI
provider pointed at the run's emulator, measured on its Anthropic ``/v1/messages`` endpoint.

Contract:

* :func:`ensure_installed` creates ``.bench-peers/litellm-venv`` (git-ignored) with the pinned
  closure of ``bench/peers/litellm-requirements.txt`` (``litellm[proxy]==VERSION``), and does
  nothing when the stamp in it matches the requirements file's hash.
* :func:`litellm_config` is the proxy's YAML config (pure: tested without LiteLLM installed):
  the client-facing model name maps to ``oci/<the model id the gateway sends>`` with
  ``api_base`` = the emulator and the OCI API-key identity (``oci_user``, ``oci_fingerprint``,
  ``oci_tenancy``, ``oci_key_file``, ``oci_region``, ``oci_compartment_id``); a second model
  name, :data:`SIGNATURE_MODEL`, reaches a *verifying* emulator with the same identity.
* :func:`start_litellm` generates the identity (RSA key, OCI-style fingerprint), starts the
  proxy (``litellm --config --host 127.0.0.1 --port <free> --num_workers 1``) on the gateway's
  CPUs, checks that LiteLLM's request signature passes the emulator's verification (a second
  emulator with ``--public-key``: the run's emulator runs ``--no-verify``, as it does for the
  gateway), that a streamed answer arrives with as many text deltas as the emulator sent
  events, and records what LiteLLM sent upstream in ``peer.info``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bench.peers import PeerProcess
from devtools import ROOT
from devtools.procs import EmulatorProcess, free_port, http_request

if TYPE_CHECKING:
    from bench.run import Bench

VERSION = "1.108.7"
REQUIREMENTS = Path(__file__).with_name("litellm-requirements.txt")
VENV = ROOT / ".bench-peers" / "litellm-venv"
MASTER_KEY = "sk-bench-litellm-0123456789abcdef"  # LiteLLM requires the sk- prefix
SIGNATURE_MODEL = "bench-signature-check"
TENANCY = "ocid1.tenancy.oc1..bench"
USER = "ocid1.user.oc1..bench"

# Environment of the proxy: no network at start-up, no per-request log lines.
ENV = {
    # the model cost map is fetched from GitHub at import otherwise
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
    # the repository root (child_env's PYTHONPATH) must not shadow LiteLLM's imports
    "PYTHONPATH": "",
}


def ensure_installed(venv: Path = VENV, requirements: Path = REQUIREMENTS) -> Path:
    """The venv's ``litellm`` executable, installing the pinned closure first if needed."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".bench-installed"
    exe = venv / "bin" / "litellm"
    if stamp.exists() and stamp.read_text().strip() == digest and exe.exists():
        return exe
    print(f"[bench] installing LiteLLM {VERSION} into {venv} (once)", file=sys.stderr, flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
        check=True,
    )
    stamp.write_text(digest + "\n")
    return exe


def make_identity(workdir: Path) -> dict[str, str]:
    """An RSA key pair in ``workdir`` and the OCI API-key identity that goes with it (the
    fingerprint is OCI's: MD5 of the DER public key, colon-separated hex)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = workdir / "litellm-oci-key.pem"
    public = workdir / "litellm-oci-public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(private, 0o600)
    pub = key.public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    public.write_bytes(pub.public_bytes(serialization.Encoding.PEM, spki))
    der = pub.public_bytes(serialization.Encoding.DER, spki)
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return {
        "key_file": str(private),
        "public_key": str(public),
        "fingerprint": fingerprint,
        "tenancy": TENANCY,
        "user": USER,
    }


def litellm_config(
    *,
    model_name: str,
    model_id: str,
    compartment_id: str,
    region: str,
    emulator_url: str,
    identity: dict[str, str],
    verify_url: str | None = None,
    extra_models: dict[str, str] | None = None,
) -> dict[str, Any]:
    """LiteLLM proxy config: ``model_name`` -> ``oci/<model_id>`` at ``emulator_url`` (and each
    of ``extra_models``, name -> OCI model id, likewise: the long-conversation section's model).

    ``api_base`` is the emulator's root: LiteLLM's ``get_oci_base_url`` strips an action path
    from it and appends ``/20231130/actions/chat`` (litellm/llms/oci/common_utils.py, chat/
    transformation.py ``get_complete_url``). Without it LiteLLM derives the real OCI host from
    ``oci_region``.
    """

    def params(api_base: str, oci_id: str = model_id) -> dict[str, Any]:
        return {
            "model": f"oci/{oci_id}",
            "api_base": api_base,
            "oci_region": region,
            "oci_user": identity["user"],
            "oci_fingerprint": identity["fingerprint"],
            "oci_tenancy": identity["tenancy"],
            "oci_key_file": identity["key_file"],
            "oci_compartment_id": compartment_id,
        }

    models = [{"model_name": model_name, "litellm_params": params(emulator_url)}]
    for name, oci_id in (extra_models or {}).items():
        models.append({"model_name": name, "litellm_params": params(emulator_url, oci_id)})
    if verify_url:
        models.append({"model_name": SIGNATURE_MODEL, "litellm_params": params(verify_url)})
    return {
        "model_list": models,
        # drop_params: LiteLLM's /v1/messages adapter adds OpenAI `stream_options` to every
        # streamed request and its OCI provider refuses it ("param `stream_options` is not
        # supported on OCI", 400) unless unsupported params are dropped. Defaults otherwise: no
        # database, no cache, no callbacks — LiteLLM's lightest proxy.
        "litellm_settings": {"drop_params": True, "telemetry": False},
        "general_settings": {"master_key": MASTER_KEY},
    }


class LiteLLMProcess(PeerProcess):
    peer = "litellm"
    label = f"LiteLLM {VERSION} /v1/messages"
    start_timeout = 120.0  # its imports alone take seconds on a shared machine

    def __init__(self, exe: Path, config: Path, workdir: Path, cpus: set[int] | None) -> None:
        super().__init__("litellm", workdir, cpus=cpus)
        self.exe = exe
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "x-api-key": MASTER_KEY,
        }

    def _command(self) -> tuple[list[str], dict[str, str]]:
        cmd = [str(self.exe), "--config", str(self.config), "--host", "127.0.0.1"]
        return [*cmd, "--port", str(self.port), "--num_workers", "1"], dict(ENV)

    def _ready(self) -> bool:
        return http_request("GET", self.url + "/health/liveliness", timeout=2)[0] == 200


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def long_models() -> dict[str, str]:
    """The long-conversation section's model (bench/long.py), name -> OCI model id."""
    from bench.long import MODEL

    config = yaml.safe_load((ROOT / "config" / "gateway.yaml").read_text())
    from bench.peers.sections import PEER_FALLBACK_MODEL

    return {m: str(config["models"][m]["model_id"]) for m in (MODEL, PEER_FALLBACK_MODEL)}


def start_litellm(bench: Bench) -> LiteLLMProcess:
    assert bench.emulator is not None
    exe = ensure_installed()
    sent = json.loads(bench.oci_body)  # the ChatDetails the gateway sends: same model, same place
    body = json.loads(bench.anthropic_body())
    identity = make_identity(bench.logs)
    verifier = EmulatorProcess(
        bench.logs, public_key=Path(identity["public_key"]), name="emulator-verify"
    ).start()
    try:
        config = litellm_config(
            model_name=body["model"],
            model_id=sent["servingMode"]["modelId"],
            compartment_id=sent["compartmentId"],
            region="us-chicago-1",
            emulator_url=bench.emulator.url,
            identity=identity,
            verify_url=verifier.url,
            extra_models=long_models(),
        )
        path = bench.logs / "litellm.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        peer = LiteLLMProcess(exe, path, bench.logs, bench.gw_cpus).start()
        bench.extra.append(peer)
        peer.info = {
            "label": "LiteLLM",
            "version": VERSION,
            "endpoint": peer.path,
            "config": str(path),
        }
        # the signature, checked by an emulator that verifies it (non-streamed, one request)
        check = dict(body, model=SIGNATURE_MODEL, stream=False)
        status, answer = _post(peer.url + peer.path, json.dumps(check).encode(), peer.headers())
        peer.info["signature_verified"] = status == 200 and bool(verifier.requests())
        if not peer.info["signature_verified"]:
            peer.info["signature_error"] = f"{status} {answer[:300]!r}"
    finally:
        verifier.stop()
    _check_stream(bench, peer)
    return peer


def _check_stream(bench: Bench, peer: LiteLLMProcess) -> None:
    """One streamed answer through LiteLLM: as many text deltas as the emulator's chunks, and
    what LiteLLM sent upstream (kept in the results: its ChatDetails differs from ours)."""
    assert bench.emulator is not None
    chunks = 20
    bench.scenario(chunks, 0.0)
    status, text = _post(peer.url + peer.path, bench.anthropic_body(), peer.headers())
    records = bench.emulator.requests()
    bench.emulator.clear_requests()
    deltas = text.count(peer.marker)
    peer.info["stream_check"] = {"status": status, "deltas": deltas, "chunks_sent": chunks}
    if records:
        upstream = records[-1]["body"]
        peer.info["upstream_body_bytes"] = len(json.dumps(upstream, separators=(",", ":")))
        peer.info["upstream_chat_request_keys"] = sorted(upstream.get("chatRequest", {}))
    if status != 200 or not deltas:
        raise RuntimeError(
            f"LiteLLM did not stream an answer ({status}): {text[:500]!r}; see {peer.out_path}"
        )
