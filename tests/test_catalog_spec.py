"""Unit tests of app/catalog/spec.py: the serving mode and failover targets of a model spec
(what app.service builds its upstream attempts from), and the GENERIC output-limit field."""

from __future__ import annotations

import pytest

from app.catalog import ModelSpec, Target, Upstream
from app.config import ConfigError, parse_config


def test_on_demand_and_dedicated_serving_modes() -> None:
    assert ModelSpec(model_id="xai.grok-4").serving_mode() == {
        "servingType": "ON_DEMAND", "modelId": "xai.grok-4"}
    assert ModelSpec(endpoint_id="ocid1.ep").serving_mode() == {
        "servingType": "DEDICATED", "endpointId": "ocid1.ep"}


def test_targets_are_the_primary_then_the_failover_list_in_order() -> None:
    spec = ModelSpec(model_id="xai.grok-4", failover=(
        Upstream(region="us-ashburn-1"),
        Upstream(endpoint="https://other.example", model_id="xai.grok-4-fast"),
        Upstream(region="eu-frankfurt-1", endpoint_id="ocid1.ep")))
    assert spec.targets() == (
        Target({"servingType": "ON_DEMAND", "modelId": "xai.grok-4"}),
        Target({"servingType": "ON_DEMAND", "modelId": "xai.grok-4"}, "us-ashburn-1"),
        Target({"servingType": "ON_DEMAND", "modelId": "xai.grok-4-fast"}, None,
               "https://other.example"),
        Target({"servingType": "DEDICATED", "endpointId": "ocid1.ep"}, "eu-frankfurt-1"),
    )
    labels = [t.label("us-chicago-1") for t in spec.targets()]
    assert labels == ["us-chicago-1", "us-ashburn-1", "https://other.example", "eu-frankfurt-1"]
    # fresh dicts: a caller editing one body cannot change the catalog
    assert spec.serving_mode() is not spec.serving_mode()


@pytest.mark.parametrize(("model_id", "field"), [
    ("openai.gpt-5", "maxCompletionTokens"), ("openai.o3", "maxCompletionTokens"),
    ("openai.gpt-oss-120b", "maxTokens"), ("meta.llama-3.3-70b-instruct", "maxTokens")])
def test_max_tokens_field(model_id: str, field: str) -> None:
    assert ModelSpec(model_id=model_id).max_tokens_field == field


def test_oci_section_needs_a_region_or_an_endpoint() -> None:
    # the inference URL is built from these two only: without either nothing could be served
    with pytest.raises(ConfigError, match="one of region or endpoint is required"):
        parse_config({"oci": {"compartment_id": "c"}, "models": {"m": {"model_id": "x"}}})
    for where in ({"region": "us-chicago-1"}, {"endpoint": "http://127.0.0.1:1"}):
        parse_config({"oci": {"compartment_id": "c", **where}, "models": {"m": {"model_id": "x"}}})


def test_list_prices_are_known_models_with_sane_figures() -> None:
    """The shipped price table names OCI ids the profile table knows (no typo'd id silently
    never matching) and every figure is a positive per-million price, cached below input."""
    from app.catalog.list_prices import list_price, priced_models
    from app.catalog.profiles import FALLBACK, table_profile

    assert len(priced_models()) >= 30
    for model_id in priced_models():
        assert table_profile(model_id) is not FALLBACK, model_id
        price = list_price(model_id)
        assert price is not None and 0 < price.input < 50 and 0 < price.output < 100
        assert price.cached_input is None or price.cached_input < price.input
    assert list_price("xai.grok-4-fast-non-reasoning") is None


def test_spec_price_sources() -> None:
    from app.catalog.spec import ModelSpec

    listed = ModelSpec(model_id="xai.grok-4")
    assert listed.price is None and listed.price_source == "list"
    price = listed.unit_price
    assert price is not None and (price.input, price.output) == (3.0, 15.0)
    own = ModelSpec(model_id="xai.grok-4", price={"input": 1.0, "output": 2.0})
    assert own.price_source == "config" and own.unit_price == own.price
    off = ModelSpec(model_id="xai.grok-4", price=None)
    assert off.unit_price is None and off.price_source is None
    dedicated = ModelSpec(endpoint_id="ocid1.generativeaiendpoint.oc1..x", base_model="xai.grok-4")
    assert dedicated.unit_price is None
