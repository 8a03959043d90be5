"""Model catalog of the OCI GenAI emulator.

Contract: ``Catalog.resolve(serving_mode, api_format)`` maps a request's ``servingMode`` to a
``ModelInfo`` (or ``None`` → the caller answers 404). A ``ModelInfo`` says which streaming
style the model family uses on the wire (reference §8.2/§8.3) and which per-model request
rules apply (vision, reasoningEffort, maxCompletionTokens). Dedicated endpoint OCIDs resolve
through ``Catalog.endpoints``; unregistered ``ocid1.generativeaiendpoint...`` ids behave like a
default model of the request's api format (Llama for GENERIC, Command R+ for COHERE).
"""

from __future__ import annotations

from dataclasses import dataclass

STYLES = ("llama", "openai", "grok", "gemini", "cohere")
ENDPOINT_PREFIX = "ocid1.generativeaiendpoint."
DEFAULT_GENERIC_MODEL = "meta.llama-3.3-70b-instruct"
DEFAULT_COHERE_MODEL = "cohere.command-r-plus-08-2024"


@dataclass(frozen=True)
class ModelInfo:
    """What the emulator knows about one model id."""

    model_id: str
    style: str
    api_format: str = "GENERIC"
    vision: bool = False
    reasoning: bool = False
    max_completion_tokens_param: bool = False
    documents: bool = False  # DOCUMENT/VIDEO/AUDIO parts (Gemini only, reference §5)
    version: str = "1.0.0"


def _m(model_id: str, style: str, *, vision: bool = False, reasoning: bool = False,
       max_completion_tokens_param: bool = False, documents: bool = False) -> ModelInfo:
    return ModelInfo(model_id=model_id, style=style,
                     api_format="COHERE" if style == "cohere" else "GENERIC",
                     vision=vision, reasoning=reasoning, documents=documents,
                     max_completion_tokens_param=max_completion_tokens_param)


_DEFAULT_MODELS: tuple[ModelInfo, ...] = (
    _m("meta.llama-3.3-70b-instruct", "llama"),
    _m("meta.llama-3.1-405b-instruct", "llama"),
    _m("meta.llama-3.1-70b-instruct", "llama"),
    _m("meta.llama-4-maverick-17b-128e-instruct-fp8", "llama", vision=True),
    _m("meta.llama-4-scout-17b-16e-instruct", "llama", vision=True),
    _m("meta.llama-3.2-90b-vision-instruct", "llama", vision=True),
    _m("openai.gpt-oss-120b", "openai", reasoning=True),
    _m("openai.gpt-oss-20b", "openai", reasoning=True),
    _m("openai.gpt-5", "openai", reasoning=True, vision=True, max_completion_tokens_param=True),
    _m("openai.gpt-5-mini", "openai", reasoning=True, vision=True,
       max_completion_tokens_param=True),
    _m("xai.grok-4", "grok", reasoning=True, vision=True),
    _m("xai.grok-4-fast-reasoning", "grok", reasoning=True, vision=True),
    _m("xai.grok-4-fast-non-reasoning", "grok", vision=True),
    _m("xai.grok-3", "grok"),
    _m("xai.grok-3-mini", "grok", reasoning=True),
    _m("google.gemini-2.5-flash", "gemini", vision=True, reasoning=True, documents=True),
    _m("google.gemini-2.5-pro", "gemini", vision=True, reasoning=True, documents=True),
    _m("google.gemini-2.5-flash-lite", "gemini", vision=True, reasoning=True, documents=True),
    _m("cohere.command-a-03-2025", "cohere"),
    _m("cohere.command-r-plus-08-2024", "cohere"),
    _m("cohere.command-r-08-2024", "cohere"),
)


class Catalog:
    """Mutable set of known models plus the dedicated-endpoint registry."""

    def __init__(self) -> None:
        self.models: dict[str, ModelInfo] = {m.model_id: m for m in _DEFAULT_MODELS}
        self.endpoints: dict[str, str] = {}  # endpoint OCID -> model id

    def add_model(self, info: ModelInfo) -> None:
        if info.style not in STYLES:
            raise ValueError(f"unknown style {info.style!r}")
        self.models[info.model_id] = info

    def register_endpoint(self, endpoint_id: str, model_id: str) -> None:
        if model_id not in self.models:
            raise KeyError(model_id)
        self.endpoints[endpoint_id] = model_id

    def resolve(self, serving_mode: dict, api_format: str) -> ModelInfo | None:
        """Model for a validated servingMode, or None when OCI would answer 404."""
        if serving_mode.get("servingType") == "DEDICATED":
            return self._resolve_endpoint(serving_mode.get("endpointId", ""), api_format)
        return self.models.get(serving_mode.get("modelId", ""))

    def _resolve_endpoint(self, endpoint_id: str, api_format: str) -> ModelInfo | None:
        if endpoint_id in self.endpoints:
            return self.models[self.endpoints[endpoint_id]]
        if not endpoint_id.startswith(ENDPOINT_PREFIX):
            return None
        default = DEFAULT_COHERE_MODEL if api_format == "COHERE" else DEFAULT_GENERIC_MODEL
        return self.models[default]
