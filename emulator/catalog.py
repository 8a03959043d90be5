"""Model catalog of the OCI GenAI emulator: what each model id accepts and how it answers.

Contract: ``Catalog.resolve(serving_mode, api_format)`` maps a request's ``servingMode`` to a
``ModelInfo`` (or ``None`` → the caller answers 404). ``modelId`` may be the model name
(``xai.grok-4``) or the model OCID that ListModels reports (``ModelInfo.ocid``). Dedicated
endpoint OCIDs resolve through ``Catalog.endpoints``; unregistered
``ocid1.generativeaiendpoint...`` ids behave like a default model of the request's api format
(Llama for GENERIC, Command R+ for COHERE, Command A Vision for COHEREV2).

A ``ModelInfo`` is data only: the streaming style of the family (reference §8.2/§8.3), the api
formats it accepts, and the flags the per-model rules in ``validate.check_model_rules`` and the
output cap in ``answer`` read. Flags come from two places, both below: ``_PATTERN_RULES``
(facts that hold for every id matching a pattern, each citing its evidence item in
/work/shared/reference/oci-real-world.md, "RW §n") and ``_DEFAULT_MODELS`` (per-model figures
of RW §5). ``model_info(model_id, style, **fields)`` builds an entry the same way, so a test can
add a model that follows the same rules.

``reasoning`` and ``effort_knob`` are different facts (RW §1): ``reasoning`` = the model thinks
before answering (may return ``reasoningContent`` / THINKING parts; informational, scripts decide
what is returned), ``effort_knob`` = the model accepts ``reasoningEffort``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

STYLES = ("llama", "openai", "grok", "gemini", "cohere")
API_FORMATS = ("GENERIC", "COHERE", "COHEREV2")
ENDPOINT_PREFIX = "ocid1.generativeaiendpoint."
MODEL_OCID_PREFIX = "ocid1.generativeaimodel.oc1.us-chicago-1."
DEFAULT_MODEL_FOR_FORMAT = {
    "GENERIC": "meta.llama-3.3-70b-instruct",
    "COHERE": "cohere.command-r-plus-08-2024",
    "COHEREV2": "cohere.command-a-vision-07-2025",
}
DEFAULT_GENERIC_MODEL = DEFAULT_MODEL_FOR_FORMAT["GENERIC"]
DEFAULT_COHERE_MODEL = DEFAULT_MODEL_FOR_FORMAT["COHERE"]
XAI_UPSTREAM_RETIREMENT = "2026-05-15T00:00:00.000Z"


@dataclass(frozen=True)
class ModelInfo:
    """What the emulator knows about one model id (see the module docstring)."""

    model_id: str
    style: str
    api_format: str = "GENERIC"  # the model's native format
    other_formats: tuple[str, ...] = ()  # further formats OCI accepts for it
    vision: bool = False
    documents: bool = False  # DOCUMENT/VIDEO/AUDIO parts (Gemini only, reference §5)
    reasoning: bool = False  # thinks before answering (informational)
    effort_knob: bool = False  # accepts reasoningEffort
    max_completion_tokens_param: bool = False  # refuses maxTokens, wants maxCompletionTokens
    fixed_sampling: bool = False  # temperature/topP other than 1 → 400
    tool_calls_need_text: bool = False  # ASSISTANT toolCalls without text → backend 500
    one_call_per_tool_turn: bool = False  # N parallel calls answered by N TOOL messages → 400
    context_window: int | None = None
    max_output_tokens: int | None = None
    on_demand_output_cap: int | None = None  # ON_DEMAND answers stop here (silent cap)
    time_deprecated: str | None = None
    time_on_demand_retired: str | None = None
    time_dedicated_retired: str | None = None
    time_created: str | None = None  # release date when the evidence gives one
    version: str = "1.0.0"

    @property
    def api_formats(self) -> tuple[str, ...]:
        return (self.api_format, *self.other_formats)

    @property
    def vendor(self) -> str:
        return self.model_id.split(".", 1)[0]

    @property
    def upstream_name(self) -> str:
        """The name the vendor uses (``grok-4``), as quoted in forwarded vendor errors."""
        return self.model_id.split(".", 1)[-1]

    @property
    def deprecated(self) -> bool:
        return self.time_deprecated is not None

    @property
    def ocid(self) -> str:
        digest = base64.b32encode(hashlib.sha256(self.model_id.encode()).digest())
        return MODEL_OCID_PREFIX + "amaaaaaa" + digest.decode().lower().rstrip("=")[:52]

    def output_cap(self, serving_type: str) -> int | None:
        """Tokens an answer may have before the emulator cuts it (None = no cap)."""
        return self.on_demand_output_cap if serving_type == "ON_DEMAND" else None

    def retirement_info(self, serving_type: str) -> str | None:
        """Value of the ``model-retirement-info`` header, or None for a current model.

        OCI documents the header but not its value format (release note 2025-07-10: it
        "highlights the model's upcoming retirement date"), so this wording is the emulator's.
        """
        if not self.deprecated:
            return None
        retired = (self.time_on_demand_retired if serving_type == "ON_DEMAND"
                   else self.time_dedicated_retired)
        mode = "on-demand" if serving_type == "ON_DEMAND" else "dedicated"
        since = (self.time_deprecated or "")[:10]
        when = retired[:10] if retired else "not announced"
        return f"{self.model_id} is deprecated since {since}; {mode} retirement date: {when}"

    def describe(self) -> dict[str, Any]:
        """Everything about the model as JSON (``GET /_fake/models``)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["api_formats"] = list(self.api_formats)
        del data["other_formats"]
        data["ocid"] = self.ocid
        return data


# --- rules per model-id pattern (applied in order; later rules win) ------------------------

_PATTERN_RULES: tuple[tuple[str, dict[str, Any]], ...] = (
    # RW §1: xAI reasons but only these Grok models take the effort knob (hermes-agent PR
    # #23435 live matrix; litellm PR #40732 "Model grok-4.20 does not support parameter
    # reasoningEffort"). Every other xai.* id keeps effort_knob=False.
    (r"^xai\.grok-(3-mini(-fast)?|4\.3|4\.20-multi-agent(-\d+)?)$",
     {"effort_knob": True, "reasoning": True}),
    # RW §1: litellm catalog supports_reasoning for gpt-oss, gpt-5*, gemini-2.5-pro/flash.
    (r"^openai\.gpt-oss-", {"effort_knob": True, "reasoning": True}),
    (r"^google\.gemini-2\.5-(pro|flash)$", {"effort_knob": True, "reasoning": True}),
    # RW §10 + wire ref §5: gpt-5* (not gpt-oss) refuse maxTokens and non-default
    # temperature/topP (langchain-oracle param_compat.py, litellm).
    (r"^openai\.gpt-5", {"effort_knob": True, "reasoning": True,
                          "max_completion_tokens_param": True, "fixed_sampling": True}),
    # RW §3 (langchain-oracle #78/#79: backend NullPointerException → 500) and RW §4
    # (langchain-oracle #111: Gemini needs 1:1 call/response turns).
    (r"^google\.", {"tool_calls_need_text": True, "one_call_per_tool_turn": True,
                    "vision": True, "documents": True}),
    # RW §8: SDK maxTokens docstrings "capped at 4,000 tokens for each run" on-demand;
    # litellm catalog: cohere.* and meta.llama-3.* 4000, llama-4 8192.
    (r"^(cohere\.|meta\.llama-3)", {"on_demand_output_cap": 4000}),
    (r"^meta\.llama-4", {"on_demand_output_cap": 8192}),
    # RW §2: Command A Vision / Reasoning take COHEREV2; GENERIC is refused ("Chat request type
    # does not match serving model", litellm cohere_v2.py). v1 COHERE reaches Vision but
    # "silently drops images" (same source; v1 has no image field), so it is accepted there.
    # No source shows v1 working for Reasoning (acedergren forces COHEREV2): refused.
    (r"^cohere\.command-a-vision", {"api_format": "COHEREV2", "other_formats": ("COHERE",),
                                    "vision": True}),
    (r"^cohere\.command-a-reasoning", {"api_format": "COHEREV2", "reasoning": True}),
    # RW §6: xAI retired these upstream on 2026-05-15 (docs.x.ai migration guide); OCI's own
    # deprecation/retirement dates are not known, so the upstream date is the deprecation date.
    (r"^xai\.grok-(4|3|code-fast-1|4-fast-.+|4-1-fast-.+)$",
     {"time_deprecated": XAI_UPSTREAM_RETIREMENT}),
)


def model_info(model_id: str, style: str, **explicit: Any) -> ModelInfo:
    """A ModelInfo with the pattern rules applied, then ``explicit`` fields on top."""
    merged: dict[str, Any] = {"api_format": "COHERE" if style == "cohere" else "GENERIC"}
    for pattern, rule in _PATTERN_RULES:
        if re.search(pattern, model_id):
            merged.update(rule)
    merged.update(explicit)
    return ModelInfo(model_id=model_id, style=style, **merged)


_m = model_info
M = 1_048_576  # Gemini's context window

# Per-model figures of RW §5 (context / max output; "catalog" = enricopesce models.json).
_DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    _m("meta.llama-3.3-70b-instruct", "llama", context_window=128_000, max_output_tokens=4000),
    _m("meta.llama-3.1-405b-instruct", "llama", context_window=128_000),
    _m("meta.llama-3.1-70b-instruct", "llama", context_window=128_000),
    _m("meta.llama-3.2-90b-vision-instruct", "llama", vision=True),
    _m("meta.llama-4-maverick-17b-128e-instruct-fp8", "llama", vision=True,
       context_window=512_000, max_output_tokens=8192, time_created="2025-05-14T00:00:00.000Z"),
    _m("meta.llama-4-scout-17b-16e-instruct", "llama", vision=True, context_window=192_000,
       max_output_tokens=8192),
    _m("openai.gpt-oss-120b", "openai", context_window=128_000, max_output_tokens=128_000),
    _m("openai.gpt-oss-20b", "openai", context_window=128_000, max_output_tokens=128_000),
    _m("openai.gpt-5", "openai", vision=True, context_window=272_000, max_output_tokens=128_000),
    _m("openai.gpt-5-mini", "openai", vision=True, context_window=272_000,
       max_output_tokens=128_000),
    # xai.grok-4: 128,000 context (OCI doc); "reasoning is not exposed" (OpenRouter) but it
    # is a reasoning model.
    _m("xai.grok-4", "grok", vision=True, reasoning=True, context_window=128_000),
    _m("xai.grok-4-fast-reasoning", "grok", vision=True, reasoning=True,
       context_window=2_000_000),
    _m("xai.grok-4-fast-non-reasoning", "grok", vision=True, context_window=2_000_000),
    # 4.1 ids use hyphens (RW §6; acedergren opencode-oci-provider v0.2.3).
    _m("xai.grok-4-1-fast-reasoning", "grok", vision=True, reasoning=True,
       context_window=2_000_000),
    _m("xai.grok-4-1-fast-non-reasoning", "grok", vision=True, context_window=2_000_000),
    _m("xai.grok-4.20-reasoning", "grok", vision=True, reasoning=True, context_window=2_000_000),
    _m("xai.grok-4.20-non-reasoning", "grok", vision=True, context_window=2_000_000),
    _m("xai.grok-4.20-0309-reasoning", "grok", vision=True, reasoning=True,
       context_window=2_000_000),
    _m("xai.grok-4.20-0309-non-reasoning", "grok", vision=True, context_window=2_000_000),
    _m("xai.grok-4.20-multi-agent", "grok", vision=True, context_window=2_000_000),
    _m("xai.grok-4.20-multi-agent-0309", "grok", vision=True, context_window=2_000_000),
    _m("xai.grok-4.3", "grok"),  # listed in OCI OpenAI-compat tests; figures unknown
    _m("xai.grok-3", "grok", context_window=131_072),
    _m("xai.grok-3-fast", "grok", context_window=131_072),
    _m("xai.grok-3-mini", "grok", context_window=131_072),
    _m("xai.grok-3-mini-fast", "grok", context_window=131_072),
    _m("xai.grok-code-fast-1", "grok", reasoning=True, context_window=256_000),
    _m("google.gemini-2.5-flash", "gemini", context_window=M, max_output_tokens=65_536),
    _m("google.gemini-2.5-pro", "gemini", context_window=M, max_output_tokens=65_536),
    _m("google.gemini-2.5-flash-lite", "gemini", context_window=M, max_output_tokens=65_536),
    _m("cohere.command-a-03-2025", "cohere", context_window=256_000, max_output_tokens=4000,
       time_created="2025-05-14T00:00:00.000Z"),
    _m("cohere.command-r-plus-08-2024", "cohere", context_window=128_000,
       time_created="2024-11-14T00:00:00.000Z"),
    _m("cohere.command-r-08-2024", "cohere", context_window=128_000,
       time_created="2024-11-14T00:00:00.000Z"),
    _m("cohere.command-a-vision-07-2025", "cohere", context_window=128_000,
       max_output_tokens=4000, time_created="2026-01-21T00:00:00.000Z"),
    # 32K output dedicated, "on-demand … limited to 4,000 tokens per run" (OCI doc).
    _m("cohere.command-a-reasoning-08-2025", "cohere", context_window=256_000,
       max_output_tokens=32_000, time_created="2026-01-21T00:00:00.000Z"),
)


@dataclass
class Catalog:
    """Mutable set of known models plus the dedicated-endpoint registry."""

    models: dict[str, ModelInfo] = field(
        default_factory=lambda: {m.model_id: m for m in _DEFAULT_MODELS})
    endpoints: dict[str, str] = field(default_factory=dict)  # endpoint OCID -> model id

    def add_model(self, info: ModelInfo) -> None:
        if info.style not in STYLES:
            raise ValueError(f"unknown style {info.style!r}")
        if any(f not in API_FORMATS for f in info.api_formats):
            raise ValueError(f"unknown api format in {info.api_formats}")
        self.models[info.model_id] = info

    def update_model(self, model_id: str, **changes: Any) -> ModelInfo:
        """Replace some fields of a known model (e.g. deprecate it in a test)."""
        info = replace(self.models[model_id], **changes)
        self.add_model(info)
        return info

    def register_endpoint(self, endpoint_id: str, model_id: str) -> None:
        if model_id not in self.models:
            raise KeyError(model_id)
        self.endpoints[endpoint_id] = model_id

    def by_ocid(self, ocid: str) -> ModelInfo | None:
        return next((m for m in self.models.values() if m.ocid == ocid), None)

    def resolve(self, serving_mode: dict, api_format: str) -> ModelInfo | None:
        """Model for a validated servingMode, or None when OCI would answer 404."""
        if serving_mode.get("servingType") == "DEDICATED":
            return self._resolve_endpoint(serving_mode.get("endpointId", ""), api_format)
        model_id = serving_mode.get("modelId", "")
        if model_id.startswith(MODEL_OCID_PREFIX):
            return self.by_ocid(model_id)
        return self.models.get(model_id)

    def _resolve_endpoint(self, endpoint_id: str, api_format: str) -> ModelInfo | None:
        if endpoint_id in self.endpoints:
            return self.models[self.endpoints[endpoint_id]]
        if not endpoint_id.startswith(ENDPOINT_PREFIX):
            return None
        return self.models[DEFAULT_MODEL_FOR_FORMAT.get(api_format, DEFAULT_GENERIC_MODEL)]
