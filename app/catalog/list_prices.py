"""Shipped default prices: OCI on-demand list prices per model id, with their source. No I/O.

Contract: :func:`list_price` returns the :class:`~app.catalog.price.Price` (USD per million
tokens) of an OCI on-demand model id, or None when the table has no figure for it. A
``models.<name>`` entry without a ``price`` key that serves the model ON_DEMAND (a ``model_id``,
not a dedicated ``endpoint_id``) takes this price (:class:`app.catalog.spec.ModelSpec`);
``price: null`` turns it off, ``price: {...}`` replaces it. Dedicated AI clusters are billed per
unit-hour, so a dedicated endpoint never gets a list price.

Evidence. Oracle publishes the figures on its Generative AI pricing page
(https://www.oracle.com/artificial-intelligence/generative-ai/generative-ai-service/pricing),
which this project cannot fetch. The table is transcribed from the public price map that LiteLLM
ships with its package (``litellm/model_prices_and_context_window_backup.json`` in litellm
1.110.2, read 2026-12-02), whose every ``oci/…`` entry names that Oracle page (the Cohere
entries name Oracle's cost estimator) as its source. Only exact OCI model ids are listed.

Two caveats the README repeats. (1) Oracle's docs price the xAI, OpenAI and Google models per
input / output / cached-input token ("Pricing Page Product Name … Input tokens, Output tokens,
Cached input tokens" on each model page), but bill Meta and Cohere on-demand calls per
character ("1 character is calculated as 1 transaction", docs "Paying for On-Demand
Inferencing"): for those two families the per-token figure is the transcribed conversion, an
approximation. (2) List prices are not a contract's: Universal Credits discounts and regional
prices differ. Where the map gives no cached-input figure, none is set, so cached tokens cost the
full input price (never cheaper than the bill).
"""

from __future__ import annotations

from app.catalog.price import Price

#: the price map this table was transcribed from (README "Spend and budgets")
SOURCE = (
    "OCI Generative AI on-demand list prices as transcribed in litellm 1.110.2's price map "
    "(each entry sourced to oracle.com's Generative AI pricing page), read 2026-12-02"
)

# (input, output, cached_input) in USD per million tokens, per OCI model id.
_TABLE: dict[str, tuple[float, float, float | None]] = {
    # xAI Grok (per token)
    "xai.grok-4": (3.0, 15.0, None),
    "xai.grok-4.20": (3.0, 15.0, None),
    "xai.grok-4.20-multi-agent": (3.0, 15.0, None),
    "xai.grok-4.20-reasoning": (1.25, 2.5, 0.2),
    "xai.grok-4.20-non-reasoning": (1.25, 2.5, 0.2),
    "xai.grok-4.20-0309-reasoning": (1.25, 2.5, 0.2),
    "xai.grok-4.20-0309-non-reasoning": (1.25, 2.5, 0.2),
    "xai.grok-4-fast": (5.0, 25.0, None),
    "xai.grok-4.1-fast": (5.0, 25.0, None),
    "xai.grok-code-fast-1": (5.0, 25.0, None),
    "xai.grok-3": (3.0, 15.0, None),
    "xai.grok-3-fast": (5.0, 25.0, None),
    "xai.grok-3-mini": (0.3, 0.5, None),
    "xai.grok-3-mini-fast": (0.6, 4.0, None),
    # OpenAI (per token)
    "openai.gpt-5": (1.25, 10.0, None),
    "openai.gpt-5-mini": (0.25, 2.0, None),
    "openai.gpt-5-nano": (0.05, 0.4, None),
    "openai.gpt-oss-120b": (0.15, 0.6, None),
    "openai.gpt-oss-20b": (0.07, 0.3, None),
    # Google Gemini (per token)
    "google.gemini-2.5-pro": (1.25, 10.0, None),
    "google.gemini-2.5-flash": (0.15, 0.6, None),
    "google.gemini-2.5-flash-lite": (0.075, 0.3, None),
    # Meta Llama (billed per character by OCI: approximate per-token conversion)
    "meta.llama-4-maverick-17b-128e-instruct-fp8": (0.72, 0.72, None),
    "meta.llama-4-scout-17b-16e-instruct": (0.72, 0.72, None),
    "meta.llama-3.3-70b-instruct": (0.72, 0.72, None),
    "meta.llama-3.3-70b-instruct-fp8-dynamic": (0.72, 0.72, None),
    "meta.llama-3.2-90b-vision-instruct": (2.0, 2.0, None),
    "meta.llama-3.2-11b-vision-instruct": (2.0, 2.0, None),
    "meta.llama-3.1-405b-instruct": (10.68, 10.68, None),
    "meta.llama-3.1-70b-instruct": (0.72, 0.72, None),
    "meta.llama-3.1-8b-instruct": (0.72, 0.72, None),
    # Cohere Command (billed per character by OCI: approximate per-token conversion)
    "cohere.command-a-03-2025": (1.56, 1.56, None),
    "cohere.command-a-vision-07-2025": (1.56, 1.56, None),
    "cohere.command-a-reasoning-08-2025": (1.56, 1.56, None),
    "cohere.command-a-translate-08-2025": (0.09, 0.09, None),
    "cohere.command-r-plus-08-2024": (1.56, 1.56, None),
    "cohere.command-r-08-2024": (0.15, 0.15, None),
    "cohere.command-latest": (1.56, 1.56, None),
    "cohere.command-plus-latest": (1.56, 1.56, None),
}


def list_price(model_id: str) -> Price | None:
    """The shipped on-demand price of ``model_id`` (exact OCI id), or None."""
    entry = _TABLE.get(model_id)
    if entry is None:
        return None
    inp, out, cached = entry
    return Price(input=inp, output=out, cached_input=cached)


def priced_models() -> tuple[str, ...]:
    """Every OCI model id with a shipped price (for ``check`` and the README table)."""
    return tuple(_TABLE)
