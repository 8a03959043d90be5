"""The conversation cache: a session's turns reach OCI exactly as without it, and only its own.

What is pinned. Over HTTP, with one emulator and two gateways (the default config, and the same
with ``server.conversation_cache_mb: 0``), a Claude Code session grown turn by turn
(``bench.long.session``: the marker moves to the new last user message) is sent to OCI
identically by both, on every wire format, and on ``count_tokens`` too; the cache gateway's
turns after the second are hits (``gateway_conversation_cache_total``: the first turn is
remembered as seen, the second recorded). A bad new message gets the same 400 as without the
cache, naming its place in the whole conversation. In-process, on the real decoder: a body
that shares a kept conversation's first bytes but not the rest is decoded on its own; a second
``messages`` key wins as in a whole decode; bodies written with spaces (the Python SDK's
``json.dumps``) are cached too; a conversation with a url source is never kept; the cache stays
within its bytes (oldest out first) and a smaller size on reload drops what no longer fits; a
kept turn's repeated messages are the kept objects; and, for random conversations (parallel
calls, results out of order, screenshots) grown turn by turn in random JSON layouts, decoding
with the cache gives the translation decoding without it gives, for three models through one
cache (hypothesis).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.anthropic.conversation_cache import MIN_PREFIX, ConversationCache
from app.anthropic.decode import RequestError, decode_request
from app.anthropic.models import MessagesRequest
from app.catalog import Catalog
from app.config import ServerLimits, parse_config
from app.errors import InvalidRequest
from app.service.parse import parse
from app.translate.to_oci import to_oci
from app.translate.tokens import raw_estimate
from app.translate.wire import encode
from bench.long import MODEL, session
from emulator import FakeOCI, TestKey
from tests.harness import TEST_MODELS, GatewayServer, metric, write_config, write_keys

FORMATS = ["gemini", "grok", "cohere", "command-a-reasoning"]  # GENERIC x2, COHERE, COHEREV2
SIZE = 96 * 1024


@pytest.fixture(scope="module")
def gateways(
    fake_session: FakeOCI, oci_key: TestKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayServer, GatewayServer]]:
    cached_dir = tmp_path_factory.mktemp("cached")
    plain_dir = tmp_path_factory.mktemp("plain")
    cached = write_config(
        cached_dir, fake_session.url, oci_key.config_path, keys_file=write_keys(cached_dir)
    )
    plain = write_config(
        plain_dir,
        fake_session.url,
        oci_key.config_path,
        keys_file=write_keys(plain_dir),
        server={"conversation_cache_mb": 0},
    )
    with GatewayServer(cached) as a, GatewayServer(plain) as b:
        yield a, b


def turns_for(model: str, n: int, user: int, size: int = SIZE) -> list[bytes]:
    """A session's turns aimed at ``model`` (the same bytes otherwise)."""
    old = f'"model":"{MODEL}"'.encode()
    return [t.replace(old, f'"model":"{model}"'.encode(), 1) for t in session(size, n, user)]


def sent(gw: GatewayServer, fake: FakeOCI, body: bytes, path: str = "/v1/messages") -> Any:
    """POST ``body`` as it is; the ChatDetails the emulator got for it (the answer for
    count_tokens, which calls no OCI)."""
    resp = gw.post(path, None, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text[:300]
    if path.endswith("count_tokens"):
        return resp.json()
    return fake.requests[-1].body


def hits(gw: GatewayServer) -> float:
    return metric(gw.metrics_url, "gateway_conversation_cache_total", result="hit")


@pytest.mark.parametrize("model", FORMATS)
def test_a_session_reaches_oci_as_without_the_cache(
    gateways: tuple[GatewayServer, GatewayServer], fake: FakeOCI, model: str
) -> None:
    cached, plain = gateways
    turns = turns_for(model, 5, user=FORMATS.index(model))
    before = hits(cached)
    for i, body in enumerate(turns):
        assert sent(cached, fake, body) == sent(plain, fake, body), f"turn {i}"
    # every turn after the second (the first is remembered as seen, the second recorded), on
    # the cache gateway only (both gateways run in this process and count into the same
    # metrics: a hit on the other would count here too)
    assert hits(cached) - before == len(turns) - 2


def test_count_tokens_counts_as_without_the_cache(
    gateways: tuple[GatewayServer, GatewayServer], fake: FakeOCI
) -> None:
    cached, plain = gateways
    path = "/v1/messages/count_tokens"
    before = hits(cached)
    for body in turns_for("grok", 4, user=20):
        assert sent(cached, fake, body, path) == sent(plain, fake, body, path)
    assert hits(cached) - before == 2


def test_a_bad_new_message_gets_the_error_it_gets_without_the_cache(
    gateways: tuple[GatewayServer, GatewayServer], fake: FakeOCI
) -> None:
    cached, plain = gateways
    turns = turns_for("grok", 3, user=30)
    for body in turns[:2]:
        sent(cached, fake, body)
    data = orjson.loads(turns[2])
    last = len(data["messages"]) - 2  # the new user message, before the mid-turn system one
    data["messages"][last]["content"].append({"type": "text", "text": 5})
    bad = orjson.dumps(data)
    before = hits(cached)
    answers = [
        gw.post("/v1/messages", None, content=bad, headers={"content-type": "application/json"})
        for gw in (cached, plain)
    ]
    assert hits(cached) == before + 1  # the kept conversation was found: its rest was bad
    assert [a.status_code for a in answers] == [400, 400]
    messages = [a.json()["error"]["message"] for a in answers]
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"messages.{last}.content.1: "), messages[0]


# -- in-process, on the real decoder ---------------------------------------------------------

CONFIG = parse_config(
    {
        "oci": {"region": "us-chicago-1", "compartment_id": "ocid1.compartment.oc1..t",
                "auth": "api_key"},
        "models": TEST_MODELS,
    }
)
CATALOG = Catalog(CONFIG)


def prime(cache: ConversationCache, body: bytes) -> None:
    """Decode ``body`` twice: seen once, then recorded (ConversationCache.keep)."""
    decode_request(body, MessagesRequest, cache)
    decode_request(body, MessagesRequest, cache)


def oci_of(body: bytes, cache: ConversationCache | None, model: str = "gemini") -> bytes:
    """The ChatDetails for ``body``, with the token estimate of it (kept OCI messages keep
    their share of the estimate: tokens.Counted)."""
    req = decode_request(body, MessagesRequest, cache)
    oci = to_oci(req, CATALOG.resolve(model), "ocid1.compartment.oc1..t").body
    return encode(oci) + b" %d" % raw_estimate(oci)


def test_a_body_sharing_only_the_first_bytes_is_decoded_on_its_own() -> None:
    cache = ConversationCache(64 << 20)
    turns = turns_for("gemini", 2, user=40)
    prime(cache, turns[0])
    data = orjson.loads(turns[1])
    data["messages"][-5]["content"][0]["text"] = "Something else entirely."  # late, kept
    other = orjson.dumps(data)
    assert other[:1024] == turns[1][:1024]
    hits_before = cache.hits
    assert oci_of(other, cache) == oci_of(other, None)
    assert cache.hits == hits_before  # the kept prefix did not match
    assert oci_of(turns[1], cache) == oci_of(turns[1], None)
    assert cache.hits == hits_before + 1


def test_a_second_messages_key_wins_as_it_does_without_the_cache() -> None:
    """``{…"messages":[…],"messages":[…]}``: the last key wins in a whole decode; a kept prefix
    must not be put in front of the second array."""
    cache = ConversationCache(64 << 20)
    turns = turns_for("gemini", 2, user=43)
    prime(cache, turns[0])
    duplicate = turns[1][:-1] + b',"messages":[{"role":"user","content":"only this"}]}'
    assert oci_of(duplicate, cache) == oci_of(duplicate, None)
    assert b"only this" in oci_of(duplicate, None)


def test_bodies_written_with_spaces_are_cached_too() -> None:
    cache = ConversationCache(64 << 20)
    spaced = [json.dumps(orjson.loads(t)).encode() for t in turns_for("gemini", 4, user=41)]
    assert b'"messages": [{' in spaced[0]  # the Python SDK's json.dumps separators
    for body in spaced:
        assert oci_of(body, cache) == oci_of(body, None)
    assert cache.hits == 2  # the third and fourth turns


def test_conversations_that_only_begin_alike_are_not_recorded() -> None:
    """Users of one project send the same first kilobytes; each one's first turn is only
    remembered as seen (recording costs a second scan), its second turn is recorded."""
    cache = ConversationCache(64 << 20)
    base = turns_for("gemini", 2, user=80)
    users = [base]
    # the same conversation but for the first assistant text past its first 2 KB
    first = orjson.loads(base[0])["messages"]
    at = next(
        i for i in range(1, len(first))
        if first[i]["role"] == "assistant" and len(orjson.dumps(first[:i])) > 2048
    )
    for u in range(3):
        variant = []
        for body in base:
            data = orjson.loads(body)
            data["messages"][at]["content"][0]["text"] = f"variant {u}"
            variant.append(orjson.dumps(data))
        users.append(variant)
    assert len({t[0][:1024] for t in users}) == 1
    for turns in users:
        decode_request(turns[0], MessagesRequest, cache)
    assert len(cache) == 0
    decode_request(users[2][1], MessagesRequest, cache)
    assert len(cache) == 1
    assert oci_of(users[2][1], cache) == oci_of(users[2][1], None)
    assert cache.hits == 1


def test_the_limits_hold_for_kept_messages_too() -> None:
    """A kept message's blocks and tool-input depth are counted once and then remembered; the
    limits of the request at hand still apply to them (a reload may lower them)."""
    data = orjson.loads(turns_for("gemini", 1, user=44)[0])
    deep: Any = "leaf"
    for _ in range(9):
        deep = {"d": deep}
    data["messages"][1]["content"][1]["input"] = {"nested": deep}  # a kept assistant turn
    body = orjson.dumps(data)
    cache = ConversationCache(64 << 20)
    prime(cache, body)
    assert len(cache) == 1
    messages = len(data["messages"])
    blocks = sum(len(m["content"]) for m in data["messages"] if isinstance(m["content"], list))
    for limits, error in (
        (ServerLimits(max_depth=8), "the request body nests deeper than 8 levels"),
        (ServerLimits(max_blocks=blocks - 1), f"messages: {blocks} content blocks exceed"),
    ):
        for c in (cache, None):
            with pytest.raises(InvalidRequest) as err:
                parse(body, MessagesRequest, limits, c)
            assert str(err.value).startswith(error)
    assert len(parse(body, MessagesRequest, ServerLimits(), cache).messages) == messages
    assert cache.hits == 3  # the two refusals and the last parse took the kept messages


def test_a_conversation_with_a_url_source_is_not_kept() -> None:
    cache = ConversationCache(64 << 20)
    data = orjson.loads(turns_for("gemini", 1, user=42)[0])
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    data["messages"][0]["content"].append(image)
    body = orjson.dumps(data)
    prime(cache, body)
    assert len(cache) == 0  # media.inline_media rewrites url sources in place


def test_the_cache_stays_within_its_bytes_oldest_out_first() -> None:
    one = turns_for("gemini", 1, user=50, size=64 * 1024)[0]
    cache = ConversationCache(64 << 20)
    prime(cache, one)
    cost = cache.size_bytes
    assert cost > MIN_PREFIX
    cache = ConversationCache(int(cost * 2.5))  # room for two conversations
    users = [turns_for("gemini", 2, user=60 + u, size=64 * 1024) for u in range(3)]
    for u in users:
        prime(cache, u[0])
        assert cache.size_bytes <= cache.max_bytes
    assert len(cache) == 2
    decode_request(users[0][1], MessagesRequest, cache)  # the oldest went
    decode_request(users[2][1], MessagesRequest, cache)  # the newest stayed
    assert (cache.hits, cache.misses) == (1, 7)
    cache.resize(cost)  # a reload with less room: what no longer fits goes
    assert len(cache) <= 1 and cache.size_bytes <= cost
    cache.resize(0)
    assert len(cache) == 0 and cache.size_bytes == 0


def test_a_kept_turn_decodes_only_its_rest() -> None:
    """A kept turn decodes only its rest: the messages it sends again are the same objects."""
    cache = ConversationCache(64 << 20)
    turns = turns_for("gemini", 4, user=70)
    reqs = [decode_request(t, MessagesRequest, cache) for t in turns]
    plain = [decode_request(t, MessagesRequest) for t in turns]
    assert [len(r.messages) for r in reqs] == [len(r.messages) for r in plain]
    assert (cache.hits, cache.misses) == (2, 2)  # the first turn seen, the second recorded
    kept = len(reqs[1].messages) - 2  # all before the marked last user message
    assert all(a is b for a, b in zip(reqs[1].messages[:kept], reqs[2].messages, strict=False))
    assert all(a is b for a, b in zip(reqs[2].messages[:kept], reqs[3].messages, strict=False))
    assert not any(a is b for a, b in zip(reqs[0].messages, reqs[1].messages, strict=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_mangled_turn_is_refused_or_read_as_without_the_cache(data: st.DataObject) -> None:
    """Bytes of a kept conversation's next turn changed at random, past the kept part and
    inside it: the cache gives the same 400 (RequestError, the text the client gets) or the
    same translation as the whole decode, never another exception (a 500)."""
    cache = ConversationCache(64 << 20)
    turns = MANGLE_TURNS
    prime(cache, turns[0])
    body = bytearray(turns[1])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.one_of(st.integers(len(body) - 4000, len(body) - 1),
                                 st.integers(0, len(body) - 1)))
        body[at] = data.draw(st.sampled_from(b'"{}[],:\\ 0a\x80'))
    mangled = bytes(body)
    outcomes = []
    for c in (cache, None):
        try:
            outcomes.append(oci_of(mangled, c))
        except (RequestError, InvalidRequest) as err:
            outcomes.append(f"{type(err).__name__}: {err}".encode())
    assert outcomes[0] == outcomes[1]


MANGLE_TURNS = turns_for("gemini", 2, user=45, size=48 * 1024)


# -- random conversations, random layouts ----------------------------------------------------

PNG = (  # 1x1
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
)


@st.composite
def conversations(draw: st.DrawFn) -> list[bytes]:
    """A conversation grown over 2-5 turns (a marker on the last user message), each turn's
    body written in one of three layouts, the filler large enough for the cache."""
    filler = "x" * (MIN_PREFIX + 100)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": filler}]}
    ]
    bodies = []
    layout = draw(st.sampled_from([(",", ":"), (", ", ": "), (",\n  ", ":  ")]))
    for turn in range(draw(st.integers(2, 5))):
        ids = [f"toolu_{turn}_{k}" for k in range(draw(st.integers(1, 3)))]  # parallel calls
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": draw(_text)},
                    *({"type": "tool_use", "id": tid, "name": "Read",
                       "input": {"file_path": draw(_text)}} for tid in ids),
                ],
            }
        )
        blocks: list[dict[str, Any]] = []
        for tid in draw(st.permutations(ids)):  # results in the order the tools finished
            result: Any = draw(st.one_of(_text, st.just("")))
            if draw(st.integers(0, 3)) == 0:  # a screenshot read: its translation depends on
                # the model (an image for a vision model, a note in the text for the others)
                result = [{"type": "text", "text": result}, {"type": "image", "source": {
                    "type": "base64", "media_type": "image/png", "data": PNG}}]
            blocks.append({"type": "tool_result", "tool_use_id": tid, "content": result,
                           "is_error": draw(st.booleans())})
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(_text)})
        messages.append({"role": "user", "content": blocks})
        for m in messages:
            for b in m["content"]:
                b.pop("cache_control", None)
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
        body = {"model": "gemini", "max_tokens": 100, "messages": messages}
        if draw(st.booleans()):
            body = {"max_tokens": 100, "messages": messages, "model": "gemini"}
        bodies.append(json.dumps(body, separators=layout, ensure_ascii=draw(st.booleans()))
                      .encode())
    return bodies


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_random_conversations_translate_as_without_the_cache(bodies: list[bytes]) -> None:
    """Each turn translated for three models through one cache: a kept message's translation
    for one model (Gemini: vision, paired calls, a text part on tool-only turns) must never be
    another's (Llama: no vision; COHERE: another format)."""
    cache = ConversationCache(64 << 20)
    for body in bodies:
        for model in ("gemini", "llama", "cohere"):
            assert oci_of(body, cache, model) == oci_of(body, None, model), model
    assert cache.hits >= 2
