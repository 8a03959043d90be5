"""What a model's tokens cost: ``models.<name>.price`` and the cost of one answer. No I/O.

Contract:
- :class:`Price` is the config entry, in USD per million tokens: ``input`` (prompt tokens OCI
  did not serve from its cache), ``output`` (completion tokens, reasoning included: OCI counts
  reasoning inside ``completionTokens``) and ``cached_input`` (prompt tokens served from the
  cache; default: the ``input`` price, so a missing figure never makes a request cheaper).
- :func:`cost` turns an Anthropic ``usage`` dict (``input_tokens`` without the cache reads,
  ``cache_read_input_tokens``, ``output_tokens``) into USD. A model without a price costs 0
  (an entry's default price is the shipped list price, app/catalog/list_prices.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

_PER = 1_000_000


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


def cost(price: Price | None, usage: dict[str, int]) -> float:
    """USD for one answer's ``usage`` at ``price`` (0.0 without a price)."""
    if price is None:
        return 0.0
    cached = price.input if price.cached_input is None else price.cached_input
    return (
        usage.get("input_tokens", 0) * price.input
        + usage.get("cache_read_input_tokens", 0) * cached
        + usage.get("output_tokens", 0) * price.output
    ) / _PER
