"""bench --peers plumbing without installing LiteLLM: the argument, the proxy config LiteLLM
gets, the OCI identity, and the peer columns of the printed table (real render of results)."""

from __future__ import annotations

import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization

from bench.peers.litellm import MASTER_KEY, SIGNATURE_MODEL, litellm_config, make_identity
from bench.report import render
from bench.run import parse_args


def test_peers_argument() -> None:
    assert parse_args([]).peers == ""
    assert parse_args(["--peers", "litellm"]).peers == ["litellm"]
    with pytest.raises(SystemExit):
        parse_args(["--peers", "nope"])


def test_identity_and_config(tmp_path) -> None:
    ident = make_identity(tmp_path)
    der = serialization.load_pem_public_key(
        (tmp_path / "litellm-oci-public.pem").read_bytes()
    ).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ident["fingerprint"] == ":".join(re.findall("..", hashlib.md5(der).hexdigest()))
    cfg = litellm_config(
        model_name="claude-sonnet-4-5",
        model_id="xai.grok-4.20-reasoning",
        compartment_id="ocid1.compartment.oc1..demo",
        region="us-chicago-1",
        emulator_url="http://127.0.0.1:1234",
        identity=ident,
        verify_url="http://127.0.0.1:5678",
    )
    main, check = cfg["model_list"]
    assert main["model_name"] == "claude-sonnet-4-5"
    assert check["model_name"] == SIGNATURE_MODEL
    p = main["litellm_params"]
    assert p["model"] == "oci/xai.grok-4.20-reasoning"
    assert p["api_base"] == "http://127.0.0.1:1234"
    assert check["litellm_params"]["api_base"] == "http://127.0.0.1:5678"
    assert p["oci_key_file"] == ident["key_file"]
    for key in ("oci_user", "oci_fingerprint", "oci_tenancy", "oci_region", "oci_compartment_id"):
        assert p[key] == check["litellm_params"][key]
    assert cfg["litellm_settings"]["drop_params"] is True  # else OCI refuses stream_options
    assert cfg["general_settings"]["master_key"] == MASTER_KEY


def _ttft(base: float) -> dict:
    out = {"requests": 10, "errors": {}, "first_error": None, "foreign_cores": 0.0}
    for q in (50, 90, 99):
        out[f"gateway_p{q}_ms"] = base + q / 100
        out[f"emulator_p{q}_ms"] = 1.0
        out[f"added_p{q}_ms"] = base + q / 100 - 1.0
    return out


def test_peer_columns_in_the_table() -> None:
    results = {
        "meta": {"cpus": 2},
        "ttft": {**_ttft(3.0), "client_cpu_share": 0.1, "warmup": 1},
        "peers": {
            "litellm": {"info": {"version": "x", "signature_verified": True}, "ttft": _ttft(30.0)}
        },
    }
    text = render(results)
    head = next(line for line in text.splitlines() if line.startswith("section"))
    assert "litellm" in head and "litellm/gw" in head
    row = next(line for line in text.splitlines() if "added TTFT p50" in line)
    # gateway 2.5 ms added, litellm 29.5 ms: the ratio is printed beside them
    assert "29.5" in row and "11.80x" in row
    assert "OCI signature verified" in text
