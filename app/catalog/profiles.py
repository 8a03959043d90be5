"""Per-model behaviour as data: what each OCI model accepts and needs, with its evidence.

Contract: :data:`RULES` is THE table, one :class:`Rule` per OCI model-id glob, most specific
first; :func:`table_profile` returns the :class:`ModelProfile` of the first rule whose glob
matches the model id (ids that match none get :data:`FALLBACK`: GENERIC, tools, no
reasoning knob, the gateway's old defaults). A profile is frozen; a config entry changes it per
model through ``models.<name>.profile`` (a :class:`ProfileOverrides`, unknown keys are errors)
and the legacy keys ``capabilities``/``api_format``/``max_tokens_param``
(:meth:`app.catalog.spec.ModelSpec.profile`). The translators read only the profile, never the
model id: no ``model_id.startswith(...)`` chains anywhere else.

Every rule cites its evidence: "RW §n" is the discrepancy item (or section) of the team's audit
of the real service (``oci-real-world.md``, kept with the team's references, not in this
repository) and the public source it names. Figures not given by the evidence keep the
gateway's previous defaults (128,000 context, 4,096 output).

Two facts the table keeps apart (RW §1): ``reasoning`` = the model reasons and may return
``reasoningContent`` (informational: the answer translator takes reasoning whenever it comes),
``reasoning_effort`` = the model *accepts* the ``reasoningEffort`` knob. Most Grok models
reason but reject the knob with a 400.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ApiFormat = Literal["GENERIC", "COHERE", "COHEREV2"]
TokensParam = Literal["max_tokens", "max_completion_tokens"]


class ModelProfile(BaseModel):
    """What one OCI model accepts and needs (see the module docstring for each field's use)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: request/answer wire format (``chatRequest.apiFormat``)
    format: ApiFormat = "GENERIC"
    #: client tools are sent (``tools``/``toolChoice``)
    tools: bool = True
    #: IMAGE parts accepted
    vision: bool = False
    #: DOCUMENT parts accepted (Gemini only, RW §2)
    documents: bool = False
    #: native ``responseFormat`` JSON schema; else the schema goes into the system prompt
    structured_output: bool = False
    #: the model reasons / returns reasoning content (informational)
    reasoning: bool = False
    #: the model accepts ``reasoningEffort`` (thinking / output_config.effort are mapped to it)
    reasoning_effort: bool = False
    #: only default sampling: the client's temperature / top_p / top_k are not sent
    fixed_sampling: bool = False
    #: GENERIC output-limit field: ``maxTokens`` or ``maxCompletionTokens``
    tokens_param: TokensParam = "max_tokens"
    #: ON_DEMAND serving caps each answer at this many tokens (DEDICATED does not)
    on_demand_max_output: int | None = Field(None, ge=1)
    #: N parallel tool calls are sent as N ASSISTANT(1 call) -> TOOL pairs
    pair_tool_calls: bool = False
    #: an ASSISTANT turn with tool calls and no text gets a minimal TEXT part
    tool_only_text_part: bool = False
    #: tool/output schemas get Gemini's stricter sanitising (no exclusiveMinimum/Maximum, ...)
    gemini_schema: bool = False
    #: images/documents only as base64 data URLs (no https links)
    media_base64_only: bool = True
    #: COHERE v1: a CHATBOT entry is inserted after a TOOL entry that a USER entry follows
    cohere_history_repair: bool = False
    #: defaults for the spec's own ``context_window`` / ``max_output_tokens`` keys
    context_window: int = Field(128000, ge=256)
    max_output_tokens: int = Field(4096, ge=1)

    def but(self, **changes: Any) -> ModelProfile:
        """This profile with some fields changed (validated like a config override)."""
        return ModelProfile.model_validate({**self.model_dump(), **changes})

    def describe(self) -> str:
        """One line: every field, for ``python -m app check``."""
        return " ".join(f"{k}={_show(v)}" for k, v in self.model_dump().items())


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class ProfileOverrides(BaseModel):
    """``models.<name>.profile``: any behaviour field of :class:`ModelProfile`, per model.

    The limits are not here: they are the spec's own ``context_window`` and
    ``max_output_tokens`` keys (whose defaults come from the table).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: ApiFormat | None = None
    tools: bool | None = None
    vision: bool | None = None
    documents: bool | None = None
    structured_output: bool | None = None
    reasoning: bool | None = None
    reasoning_effort: bool | None = None
    fixed_sampling: bool | None = None
    tokens_param: TokensParam | None = None
    on_demand_max_output: int | None = Field(None, ge=1)
    pair_tool_calls: bool | None = None
    tool_only_text_part: bool | None = None
    gemini_schema: bool | None = None
    media_base64_only: bool | None = None
    cohere_history_repair: bool | None = None

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str  #: glob over the OCI model id (``fnmatch``, case-sensitive)
    profile: ModelProfile

    def matches(self, model_id: str) -> bool:
        return _compile(self.pattern).match(model_id) is not None


@cache
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


FALLBACK = ModelProfile()

# ---- family bases (not rules themselves) ------------------------------------------------------

_GROK = ModelProfile(
    # RW §5: Grok 4 family takes base64 images (OCI xai-grok-4.htm); JSON-schema output as the
    # gateway shipped it for xai.grok-4. RW §1: the knob is refused unless a rule says so.
    vision=True,
    structured_output=True,
    reasoning=True,
    context_window=2_000_000,
    max_output_tokens=16384,
)
_GROK3 = _GROK.but(vision=False, structured_output=False, reasoning=False, context_window=131072)
_GEMINI = ModelProfile(
    # RW §3 (langchain-oracle #78/#79: NPE -> HTTP 500 on ASSISTANT toolCalls without text),
    # RW §4 (langchain-oracle PR #111: 1:1 call/response pairs), RW §7 (langchain-oracle #291:
    # exclusiveMinimum/Maximum rejected), RW §2/§5: documents/audio/video API-only, Gemini only;
    # 1,048,576 in / 65,536 out (OCI google-gemini-2-5-flash.htm).
    vision=True,
    documents=True,
    pair_tool_calls=True,
    tool_only_text_part=True,
    gemini_schema=True,
    context_window=1_048_576,
    max_output_tokens=65536,
)
_COHERE_V1 = ModelProfile(
    # RW §3: command-a-03-2025 / command-r(-plus) work on COHERE v1 (litellm, langchain-oci,
    # acedergren). RW §5 (langchain-oci providers/cohere.py): TOOL must be followed by CHATBOT.
    # RW §8: SDK CohereChatRequest.maxTokens "capped at 4,000 tokens for each run" on-demand;
    # litellm catalog max_output_tokens 4000 for every oci/cohere.*.
    format="COHERE",
    cohere_history_repair=True,
    on_demand_max_output=4000,
    max_output_tokens=4000,
)
_COHERE_V2 = ModelProfile(
    # RW §2: COHEREV2 only (GENERIC "Chat request type does not match serving model", v1 drops
    # images: litellm cohere_v2.py; acedergren getApiFormat()). RW §8: 4,000 on demand.
    format="COHEREV2",
    on_demand_max_output=4000,
    max_output_tokens=4000,
)
_LLAMA = ModelProfile(
    # RW §8: SDK GenericChatRequest.maxTokens on-demand cap 4,000; litellm oci/meta.llama-3.*
    # max_output_tokens 4000 (Llama 3.3: 128K / 4,000, RW §5).
    on_demand_max_output=4000,
    max_output_tokens=4000,
)

# ---- the table: first match wins, most specific first -----------------------------------------

RULES: tuple[Rule, ...] = (
    # -- xAI Grok (RW §1: hermes-agent PR #23435 live xAI matrix; litellm PR #40732 "Model
    #    grok-4.20 does not support parameter reasoningEffort"; acedergren registry.ts).
    #    Knob accepted: grok-3-mini(-fast), grok-4.3, grok-4.20-multi-agent. Rejected: the rest.
    Rule("xai.grok-3-mini*", _GROK3.but(reasoning=True, reasoning_effort=True)),
    Rule("xai.grok-4.3*", _GROK.but(reasoning_effort=True)),
    # RW §5: grok-4.20 (GA Mar 2026) context 2M in the OCI catalog, 1M in litellm's: the lower,
    # so the gateway's pre-check never lets through a prompt OCI could refuse.
    Rule("xai.grok-4.20-multi-agent*", _GROK.but(reasoning_effort=True, context_window=1000000)),
    Rule("xai.grok-4.20*-non-reasoning", _GROK.but(reasoning=False, context_window=1000000)),
    Rule("xai.grok-4.20*", _GROK.but(context_window=1000000)),
    # RW §5: "-non-reasoning" variants do not reason; 2M context (enricopesce catalog).
    Rule("xai.grok-4*-non-reasoning", _GROK.but(reasoning=False)),
    # RW §5/§8: xai.grok-4 context 128,000 (OCI xai-grok-4.htm), not 131,072; playground 16K out.
    Rule("xai.grok-4", _GROK.but(context_window=128000)),
    # RW §5: grok-4-fast-*, grok-4-1-fast-* (hyphens, RW §6: xai.grok-4.1-* is not an OCI id): 2M.
    Rule("xai.grok-4*", _GROK),
    # RW §5: grok-code-fast-1 256K, no vision; knob rejected (RW §1 matrix).
    Rule("xai.grok-code-fast-*", _GROK3.but(reasoning=True, context_window=256000)),
    # RW §5: grok-3, grok-3-fast: 131K, no vision, no knob.
    Rule("xai.grok-3*", _GROK3),
    Rule("xai.*", _GROK3),
    # -- OpenAI on OCI
    # RW §1/§5: gpt-oss reasons and takes the knob (litellm supports_reasoning), text only,
    # 128K (OCI openai-gpt-oss-120b.htm); maxTokens (litellm excludes gpt-oss* from
    # maxCompletionTokens). Output: the shipped 16,384 (litellm's 128K is the whole window).
    Rule(
        "openai.gpt-oss-*",
        ModelProfile(reasoning=True, reasoning_effort=True, max_output_tokens=16384),
    ),
    # RW §10: gpt-5* return 400 unsupported_value for non-default temperature/top_p
    # (langchain-oracle param_compat.py, "observed live"); maxCompletionTokens (wire ref §5,
    # litellm _model_uses_max_completion_tokens); 272K / 128K, vision, knob (litellm catalog).
    Rule(
        "openai.gpt-5*",
        ModelProfile(
            vision=True,
            reasoning=True,
            reasoning_effort=True,
            fixed_sampling=True,
            tokens_param="max_completion_tokens",
            context_window=272000,
            max_output_tokens=128000,
        ),
    ),
    # RW §10: litellm sends maxCompletionTokens to every openai.* but gpt-oss; gpt-4.1 accepts
    # both, o-series only the new one (wire ref §5). Sampling left to the client (no evidence).
    Rule("openai.*", ModelProfile(vision=True, tokens_param="max_completion_tokens")),
    # -- Google Gemini (external call)
    # RW §5: flash-lite has no effort knob (litellm catalog supports_reasoning false).
    Rule("google.gemini-2.5-flash-lite*", _GEMINI),
    # RW §1: gemini-2.5-pro / flash take the knob (litellm catalog supports_reasoning: true).
    Rule("google.gemini-2.5-*", _GEMINI.but(reasoning=True, reasoning_effort=True)),
    Rule("google.*", _GEMINI),
    # -- Meta Llama
    # RW §5/§8: Llama 4 Maverick 512K (catalog), Scout 192K, vision, 8,192 out (litellm).
    Rule(
        "meta.llama-4-maverick*",
        _LLAMA.but(
            vision=True, context_window=512000, on_demand_max_output=8192, max_output_tokens=8192
        ),
    ),
    Rule(
        "meta.llama-4*",
        _LLAMA.but(
            vision=True, context_window=192000, on_demand_max_output=8192, max_output_tokens=8192
        ),
    ),
    # langchain-oci utils/vision.py VISION_MODELS lists the Llama 3.2 vision models.
    Rule("meta.llama-3.2-*-vision*", _LLAMA.but(vision=True)),
    Rule("meta.llama-3*", _LLAMA),
    Rule("meta.*", _LLAMA),
    # -- Cohere
    # RW §2/§5: Command A Vision 128K, vision, COHEREV2 only.
    Rule("cohere.command-a-vision*", _COHERE_V2.but(vision=True)),
    # RW §2/§5: Command A Reasoning 256K (32K out dedicated), COHEREV2 for `thinking`.
    Rule(
        "cohere.command-a-reasoning*",
        _COHERE_V2.but(reasoning=True, context_window=256000, max_output_tokens=32000),
    ),
    # RW §5: command-a-03-2025 256K / 4,000 on demand.
    Rule("cohere.command-a*", _COHERE_V1.but(context_window=256000)),
    Rule("cohere.*", _COHERE_V1),
)


@lru_cache(maxsize=1024)
def table_profile(model_id: str | None) -> ModelProfile:
    """The profile of the first rule matching ``model_id`` (None: :data:`FALLBACK`)."""
    if model_id:
        for rule in RULES:
            if rule.matches(model_id):
                return rule.profile
    return FALLBACK


def table_rule(model_id: str | None) -> str | None:
    """The glob of the rule that gives ``model_id`` its profile (for ``check``), or None."""
    if model_id:
        for rule in RULES:
            if rule.matches(model_id):
                return rule.pattern
    return None
