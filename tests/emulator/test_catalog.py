"""Catalog-driven behaviour over HTTP: current models, the on-demand output cap (RW §8), the
``model-retirement-info`` header (RW §6) and the management API's ListModels / GetModel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import oci
import pytest

from emulator import MODELS_PATH, Catalog, FakeOCI, Scenario, TestKey, tool_call
from tests.emulator.wire import (
    LLAMA,
    VISION_V2,
    Result,
    cohere_details,
    details,
    send,
    signed_get_headers,
    text_of,
    v2_details,
)

LONG = "abcd" * 5000  # 20,000 characters = 5,000 tokens by the emulator's rule
DEDICATED = "ocid1.generativeaiendpoint.oc1.us-chicago-1.capped"


# --- current models (RW §5) -----------------------------------------------------------------

@pytest.mark.parametrize("model", [
    "xai.grok-4.3", "xai.grok-4.20-reasoning", "xai.grok-4.20-non-reasoning",
    "xai.grok-4.20-multi-agent", "xai.grok-4-1-fast-reasoning", "google.gemini-2.5-flash-lite",
    "meta.llama-4-maverick-17b-128e-instruct-fp8", "meta.llama-4-scout-17b-16e-instruct",
    "openai.gpt-5", "xai.grok-code-fast-1", "xai.grok-3-mini-fast"])
def test_current_generic_models_answer(chat: Callable[..., Result], model: str) -> None:
    fields = {"maxCompletionTokens": 50} if model.startswith("openai.gpt-5") else {}
    assert chat(details(model, **fields)).status == 200


def test_dotted_grok_4_1_ids_do_not_exist(chat: Callable[..., Result]) -> None:
    assert chat(details("xai.grok-4.1-fast-reasoning")).status == 404  # RW §6: hyphens


def test_catalog_figures() -> None:
    models = Catalog().models
    assert models["xai.grok-4"].context_window == 128_000
    assert models["google.gemini-2.5-pro"].max_output_tokens == 65_536
    assert models["meta.llama-4-scout-17b-16e-instruct"].context_window == 192_000
    assert models["cohere.command-a-reasoning-08-2025"].max_output_tokens == 32_000
    assert models[VISION_V2].api_formats == ("COHEREV2", "COHERE")


# --- on-demand output cap (RW §8) -----------------------------------------------------------

@pytest.mark.parametrize(("model", "cap"), [
    (LLAMA, 4000), ("meta.llama-4-maverick-17b-128e-instruct-fp8", 8192),
    ("cohere.command-a-03-2025", 4000), (VISION_V2, 4000),
    ("cohere.command-a-reasoning-08-2025", 4000),
    ("google.gemini-2.5-flash", None), ("xai.grok-4", None), ("openai.gpt-oss-120b", None)])
def test_the_cap_is_queryable(fake: FakeOCI, model: str, cap: int | None) -> None:
    info = fake.catalog.models[model]
    assert info.on_demand_output_cap == cap
    assert info.output_cap("ON_DEMAND") == cap and info.output_cap("DEDICATED") is None
    listed = {m["model_id"]: m for m in send("GET", fake.url + "/_fake/models").json()["models"]}
    assert listed[model]["on_demand_output_cap"] == cap


def test_generic_answer_is_cut_at_the_cap(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text=LONG))
    result = chat(details(LLAMA, maxTokens=8000))
    choice = result.json()["chatResponse"]["choices"][0]
    assert choice["finishReason"] == "length"
    assert choice["message"]["content"][0]["text"] == LONG[:16_000]
    assert result.json()["chatResponse"]["usage"]["completionTokens"] == 4000
    assert result.headers["x-fake-oci-output-capped"] == "4000"


def test_streamed_answer_is_cut_at_the_cap(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text=LONG * 2, chunks=50,
                       tool_calls=[tool_call("f", {"a": 1})]))
    model = "meta.llama-4-scout-17b-16e-instruct"
    result = chat(details(model, stream=True, include_usage=True, maxTokens=10_000))
    events = result.events()
    assert text_of(events) == (LONG * 2)[: 8192 * 4]
    assert not any(e.get("message", {}).get("toolCalls") for e in events if isinstance(e, dict))
    assert events[-3]["finishReason"] == "length" and events[-2]["usage"][
        "completionTokens"] == 8192


def test_cohere_answers_are_cut_at_the_cap(fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text=LONG))
    response = chat(cohere_details(maxTokens=8000)).json()["chatResponse"]
    assert response["finishReason"] == "MAX_TOKENS" and len(response["text"]) == 16_000
    fake.push(Scenario(text=LONG, reasoning="r" * 100))
    v2 = chat(v2_details(maxTokens=8000)).json()["chatResponse"]
    assert v2["finishReason"] == "MAX_TOKENS"
    assert v2["message"]["content"] == [{"type": "THINKING", "thinking": "r" * 100},
                                        {"type": "TEXT", "text": LONG[: 16_000 - 100]}]
    assert v2["usage"]["completionTokens"] == 4000


def test_short_answers_and_dedicated_serving_are_not_capped(
        fake: FakeOCI, chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text="short"))
    result = chat(details(LLAMA, maxTokens=8000))
    assert result.json()["chatResponse"]["choices"][0]["finishReason"] == "stop"
    assert "x-fake-oci-output-capped" not in result.headers
    fake.catalog.register_endpoint(DEDICATED, LLAMA)
    body = details(maxTokens=8000)
    body["servingMode"] = {"servingType": "DEDICATED", "endpointId": DEDICATED}
    fake.push(Scenario(text=LONG))
    choice = chat(body).json()["chatResponse"]["choices"][0]
    assert choice["finishReason"] == "stop" and len(choice["message"]["content"][0]["text"]) \
        == len(LONG)


def test_models_without_a_cap_answer_in_full(fake: FakeOCI,
                                             chat: Callable[..., Result]) -> None:
    fake.push(Scenario(text=LONG * 4))
    choice = chat(details("google.gemini-2.5-flash")).json()["chatResponse"]["choices"][0]
    assert choice["finishReason"] == "stop"


# --- model-retirement-info (RW §6, OCI release note 2025-07-10) -----------------------------

@pytest.mark.parametrize("model", ["xai.grok-4", "xai.grok-3", "xai.grok-code-fast-1",
                                   "xai.grok-4-fast-reasoning", "xai.grok-4-1-fast-non-reasoning"])
def test_deprecated_models_carry_the_retirement_header(chat: Callable[..., Result],
                                                       model: str) -> None:
    for stream in (False, True):
        result = chat(details(model, stream=stream))
        assert result.status == 200
        assert result.headers["model-retirement-info"] == (
            f"{model} is deprecated since 2026-05-15; on-demand retirement date: not announced")


@pytest.mark.parametrize("model", ["xai.grok-4.20-reasoning", "xai.grok-4.3", "xai.grok-3-mini",
                                   "xai.grok-3-fast", LLAMA, "google.gemini-2.5-pro"])
def test_current_models_have_no_retirement_header(chat: Callable[..., Result],
                                                  model: str) -> None:
    assert "model-retirement-info" not in chat(details(model)).headers


def test_retirement_dates_show_in_the_header(fake: FakeOCI,
                                             chat: Callable[..., Result]) -> None:
    fake.catalog.update_model(LLAMA, time_deprecated="2026-09-01T00:00:00.000Z",
                              time_on_demand_retired="2026-12-01T00:00:00.000Z")
    try:
        assert chat(details(LLAMA)).headers["model-retirement-info"] == (
            f"{LLAMA} is deprecated since 2026-09-01; on-demand retirement date: 2026-12-01")
        fake.catalog.register_endpoint(DEDICATED, LLAMA)
        body = details()
        body["servingMode"] = {"servingType": "DEDICATED", "endpointId": DEDICATED}
        assert chat(body).headers["model-retirement-info"].endswith(
            "dedicated retirement date: not announced")
    finally:
        fake.catalog.update_model(LLAMA, time_deprecated=None, time_on_demand_retired=None)


# --- ListModels / GetModel -----------------------------------------------------------------

def _get(fake: FakeOCI, signer: Any, path: str, **query: Any) -> Result:
    url = fake.url + path + (f"?{urlencode(query, doseq=True)}" if query else "")
    return send("GET", url, None, signed_get_headers(signer, url))


def test_list_models_raw(fake: FakeOCI, signer: Any) -> None:
    result = _get(fake, signer, MODELS_PATH, compartmentId="ocid1.compartment.oc1..test")
    assert result.status == 200 and result.headers["content-type"] == "application/json"
    assert "opc-next-page" not in result.headers
    items = result.json()["items"]
    assert len(items) == len(fake.catalog.models)
    by_name = {i["displayName"]: i for i in items}
    grok = by_name["xai.grok-4"]
    assert grok["id"].startswith("ocid1.generativeaimodel.oc1.")
    assert grok["vendor"] == "xai" and grok["capabilities"] == ["CHAT"]
    assert grok["lifecycleState"] == "ACTIVE" and grok["type"] == "BASE"
    assert grok["timeDeprecated"] == "2026-05-15T00:00:00.000Z"
    assert "timeDeprecated" not in by_name["xai.grok-4.3"]
    assert [i["displayName"] for i in items] == sorted(by_name)


def test_list_models_filters_sorts_and_pages(fake: FakeOCI, signer: Any) -> None:
    comp = "ocid1.compartment.oc1..test"
    xai = _get(fake, signer, MODELS_PATH, compartmentId=comp, vendor="xai").json()["items"]
    assert xai and all(i["displayName"].startswith("xai.") for i in xai)
    one = _get(fake, signer, MODELS_PATH, compartmentId=comp, displayName=LLAMA).json()
    assert [i["displayName"] for i in one["items"]] == [LLAMA]
    desc = _get(fake, signer, MODELS_PATH, compartmentId=comp, sortBy="displayName",
                sortOrder="DESC").json()["items"]
    assert [i["displayName"] for i in desc] == sorted((i["displayName"] for i in desc),
                                                      reverse=True)
    first = _get(fake, signer, MODELS_PATH, compartmentId=comp, limit=5)
    assert len(first.json()["items"]) == 5 and first.headers["opc-next-page"] == "5"
    names, page = [], None
    while True:
        query = {"compartmentId": comp, "limit": 7, **({"page": page} if page else {})}
        result = _get(fake, signer, MODELS_PATH, **query)
        names += [i["displayName"] for i in result.json()["items"]]
        page = result.headers.get("opc-next-page")
        if page is None:
            break
    assert names == sorted(fake.catalog.models)
    assert _get(fake, signer, MODELS_PATH).status == 400  # compartmentId is required
    assert send("GET", fake.url + MODELS_PATH + "?compartmentId=x").status == 401


def test_real_sdk_list_and_get_models(fake: FakeOCI, key: TestKey,
                                      chat: Callable[..., Result]) -> None:
    config = oci.config.from_file(str(key.config_path))
    client = oci.generative_ai.GenerativeAiClient(
        config, service_endpoint=fake.url, retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy())
    everything = oci.pagination.list_call_get_all_results(
        client.list_models, "ocid1.compartment.oc1..test", limit=4).data
    assert sorted(m.display_name for m in everything) == sorted(fake.catalog.models)
    grok = next(m for m in everything if m.display_name == "xai.grok-4")
    assert isinstance(grok, oci.generative_ai.models.ModelSummary)
    assert grok.time_deprecated is not None and grok.time_deprecated.year == 2026
    assert grok.capabilities == ["CHAT"] and grok.lifecycle_state == "ACTIVE"
    model = client.get_model(grok.id).data
    assert model.display_name == "xai.grok-4" and model.vendor == "xai"
    # the OCID works as servingMode.modelId
    body = details(grok.id)
    assert chat(body).json()["modelId"] == "xai.grok-4"
    with pytest.raises(oci.exceptions.ServiceError) as missing:
        client.get_model("ocid1.generativeaimodel.oc1.us-chicago-1.nope")
    assert missing.value.status == 404
