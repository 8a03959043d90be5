"""OCI Generative AI emulator: inference (``POST /20231130/actions/chat``) and ListModels.

The demo upstream of ``docker compose up`` and the upstream of the tests, the benchmark and the
soak script: it speaks the real wire protocol, verifies request signatures and reproduces the
real service's known rejections (emulator/README.md). Run it with ``python -m emulator`` or
``oci-emulator``; embed it in-process with :class:`FakeOCI`::

    from emulator import FakeOCI, Scenario, make_test_key, tool_call

    key = make_test_key(tmp_path)
    with FakeOCI(public_keys={key.key_id: key.public_pem}) as fake:
        fake.push(Scenario(text="Hi there", chunks=3))
        ...  # point the gateway at fake.url with key.config_path
        assert fake.requests[-1].body["chatRequest"]["isStream"]

See ``server`` (HTTP surface), ``catalog`` (per-model facts and rules), ``validate`` (the
rejections), ``scenario`` (scripting), ``streams`` (event shapes), ``tokens`` (the
deterministic token count), ``management`` (ListModels) and ``cassettes`` (``--replay``).
"""

from .cassettes import Cassette, CassetteError, CassetteLibrary
from .catalog import Catalog, ModelInfo, model_info
from .keys import TestKey, make_test_key
from .records import RecordedRequest
from .scenario import (
    Scenario,
    ScenarioError,
    ScenarioToolCall,
    error_scenario,
    inline_marker,
    parse_inline_marker,
    tool_call,
)
from .server import CHAT_PATH, MODELS_PATH, FakeOCI
from .tokens import ceil4, completion_tokens, prompt_tokens

__all__ = [
    "CHAT_PATH",
    "MODELS_PATH",
    "Cassette",
    "CassetteError",
    "CassetteLibrary",
    "Catalog",
    "FakeOCI",
    "ModelInfo",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "ScenarioToolCall",
    "TestKey",
    "ceil4",
    "completion_tokens",
    "error_scenario",
    "inline_marker",
    "make_test_key",
    "model_info",
    "parse_inline_marker",
    "prompt_tokens",
    "tool_call",
]
