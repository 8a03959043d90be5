"""The circuit breakers and load spreading of app/oci/breaker.py, unit by unit: every state
transition on an injected clock, what counts as a failure (real OCI error answers through
``classify`` and the transport's own errors), the order of a request's targets, and the
weighted draw's distribution on a seeded random source. The config side (``oci.circuit_breaker``,
``spread``/``weight``) is checked through the config parser."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from app.config import CircuitBreaker, ConfigError, parse_config
from app.oci.breaker import Breaker, Breakers, Outcome, State, outcome
from app.oci.errors import broken_answer, classify, connect_error, timeout_error

A, B, C = "primary", "second", "third"
S, F, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breakers(failures: int = 3, cooldown: float = 30.0, **kw: object
              ) -> tuple[Breakers, Clock, list[tuple[str, str, str]]]:
    clock = Clock()
    moves: list[tuple[str, str, str]] = []

    def moved(b: Breaker, old: State, new: State) -> None:
        moves.append((str(b.key), old.label, new.label))

    settings = CircuitBreaker(failures=failures, cooldown=cooldown, **kw)  # type: ignore[arg-type]
    return Breakers(settings, clock=clock, on_transition=moved), clock, moves


def _attempt(br: Breakers, key: str, result: Outcome) -> State:
    ticket = br.begin(key)
    br.end(ticket, result)
    return ticket.seen


# --------------------------------------------------------------------------- transitions

def test_closed_opens_after_n_consecutive_failures_and_a_success_resets_the_count() -> None:
    br, _, moves = _breakers(failures=3)
    for _ in range(2):
        _attempt(br, A, F)
    _attempt(br, A, S)  # not consecutive any more
    for _ in range(2):
        _attempt(br, A, F)
    assert br.state(A) == State.CLOSED and moves == []
    _attempt(br, A, F)
    assert br.state(A) == State.OPEN
    assert moves == [(A, "closed", "open")]


def test_open_is_skipped_until_the_cooldown_ends_then_half_open_in_its_place() -> None:
    br, clock, moves = _breakers(failures=1, cooldown=30)
    _attempt(br, A, F)
    assert br.plan([A, B]) == [1]
    clock.now += 29.9
    assert br.plan([A, B]) == [1] and br.state(A) == State.OPEN
    clock.now += 0.1
    assert br.plan([A, B]) == [0, 1]  # the probe keeps the primary's place
    assert br.state(A) == State.HALF_OPEN
    assert moves == [(A, "closed", "open"), (A, "open", "half_open")]


def test_half_open_lets_one_probe_through_and_its_success_closes() -> None:
    br, clock, moves = _breakers(failures=1, cooldown=5)
    _attempt(br, A, F)
    clock.now += 5
    probe = br.begin(A)
    assert probe.seen == State.HALF_OPEN and probe.probe
    # while the probe is out, other requests go elsewhere
    assert br.plan([A, B]) == [1]
    br.end(probe, S)
    assert br.state(A) == State.CLOSED and br.plan([A, B]) == [0, 1]
    assert moves[-1] == (A, "half_open", "closed")
    assert br.get(A).failures == 0


def test_a_failed_probe_reopens_for_another_full_cooldown() -> None:
    br, clock, moves = _breakers(failures=3, cooldown=5)
    for _ in range(3):
        _attempt(br, A, F)
    clock.now += 5
    assert _attempt(br, A, F) == State.HALF_OPEN
    assert br.state(A) == State.OPEN and br.get(A).until == clock.now + 5
    clock.now += 4.9
    assert br.plan([A, B]) == [1]
    clock.now += 0.1
    assert br.plan([A, B]) == [0, 1]
    assert [to for _, _, to in moves] == ["open", "half_open", "open", "half_open"]


def test_a_neutral_probe_frees_the_slot_for_the_next_request() -> None:
    br, clock, _ = _breakers(failures=1, cooldown=5)
    _attempt(br, A, F)
    clock.now += 5
    probe = br.begin(A)
    br.end(probe, N)  # e.g. the client went away, or OCI answered 429
    assert br.state(A) == State.HALF_OPEN and not br.get(A).probing
    second = br.begin(A)
    assert second.probe


def test_a_failure_while_open_restarts_the_cooldown() -> None:
    br, clock, _ = _breakers(failures=1, cooldown=10)
    stale = br.begin(A)  # in flight before the circuit opened
    _attempt(br, A, F)
    clock.now += 8
    br.end(stale, F)
    assert br.get(A).until == clock.now + 10
    clock.now += 9
    assert br.state(A) == State.OPEN


def test_any_success_closes_even_while_open() -> None:
    br, _, moves = _breakers(failures=1)
    stale = br.begin(A)
    _attempt(br, A, F)
    br.end(stale, S)  # a request that started earlier got through: the target works
    assert br.state(A) == State.CLOSED
    assert moves == [(A, "closed", "open"), (A, "open", "closed")]


def test_every_target_open_tries_the_soonest_back_first_and_leaves_none_out() -> None:
    br, clock, _ = _breakers(failures=1, cooldown=10)
    _attempt(br, B, F)
    clock.now += 1
    _attempt(br, A, F)
    clock.now += 1
    _attempt(br, C, F)
    assert br.plan([A, B, C]) == [1, 0, 2]
    seen = br.begin(B)
    assert seen.seen == State.OPEN and not seen.probe
    br.end(seen, S)  # the fallback attempt answered: that target is closed again
    assert br.plan([A, B, C]) == [1]


def test_a_single_target_model_always_gets_its_attempt() -> None:
    br, clock, _ = _breakers(failures=1, cooldown=10)
    _attempt(br, A, F)
    assert br.plan([A]) == [0]
    clock.now += 10
    probe = br.begin(A)
    assert probe.probe
    assert br.plan([A]) == [0]  # probe out, nothing else: still tried (today's behaviour)


def test_disabled_breakers_change_nothing() -> None:
    br, _, moves = _breakers(failures=1, enabled=False)
    for _ in range(5):
        assert _attempt(br, A, F) == State.CLOSED
    assert br.plan([A, B]) == [0, 1] and moves == []


# --------------------------------------------------------------------------- what counts

@pytest.mark.parametrize(("err", "expected"), [
    (classify(503, b'{"code":"ServiceUnavailable","message":"busy"}', {}, None), F),
    (classify(500, b'{"code":"InternalServerError","message":"x"}', {}, None), F),
    (classify(504, b"", {}, None), F),
    (timeout_error("first byte"), F),
    (connect_error(ConnectionRefusedError()), F),
    (broken_answer("cut off", retryable=True), F),
    # OCI answered: throttling is handled per request (backoff, failover), not by the breaker
    (classify(429, b'{"code":"TooManyRequests","message":"slow down"}', {}, None), N),
    (classify(400, b'{"code":"400","message":"bad"}', {}, None), N),
    (classify(401, b'{"code":"NotAuthenticated","message":"x"}', {}, None), N),
    (classify(404, b'{"code":"NotFound","message":"x"}', {}, None), N),
    (classify(501, b'{"code":"NotImplemented","message":"x"}', {}, None), N),
    (None, S),
])
def test_outcome_of_each_kind_of_answer(err: object, expected: Outcome) -> None:
    assert outcome(err) == expected  # type: ignore[arg-type]


def test_429s_neither_open_nor_reset_the_count() -> None:
    br, _, _ = _breakers(failures=2)
    throttled = outcome(classify(429, b"{}", {}, None))
    _attempt(br, A, F)
    for _ in range(10):
        _attempt(br, A, throttled)
    assert br.state(A) == State.CLOSED
    _attempt(br, A, F)
    assert br.state(A) == State.OPEN


# --------------------------------------------------------------------------- spreading

def test_weighted_first_target_follows_the_weights() -> None:
    br = Breakers(rng=random.Random(1234))
    draws = 4000
    firsts = Counter(br.plan([A, B], [3.0, 1.0])[0] for _ in range(draws))
    assert set(firsts) == {0, 1}
    assert 0.72 < firsts[0] / draws < 0.78  # 3:1; sigma of the share is 0.007 at 4000 draws


def test_spreading_fails_over_through_the_rest_in_configured_order() -> None:
    br = Breakers(rng=random.Random(7))
    plans = {tuple(br.plan([A, B, C], [1.0, 1.0, 1.0])) for _ in range(200)}
    assert plans == {(0, 1, 2), (1, 0, 2), (2, 0, 1)}


def test_spreading_draws_among_available_targets_only_and_never_a_zero_weight() -> None:
    br, _, _ = _breakers(failures=1)
    br.rng.seed(3)
    _attempt(br, A, F)
    assert {br.plan([A, B, C], [5.0, 1.0, 0.0])[0] for _ in range(200)} == {1}
    assert br.plan([B, C], [0.0, 0.0]) == [0, 1]  # nothing to draw: configured order
    assert {br.plan([C, B], [0.0, 1.0])[0] for _ in range(50)} == {1}


def test_same_seed_same_sequence() -> None:
    one, two = Breakers(rng=random.Random(42)), Breakers(rng=random.Random(42))
    assert [one.plan([A, B], [2.0, 1.0]) for _ in range(50)] == [
        two.plan([A, B], [2.0, 1.0]) for _ in range(50)]


# --------------------------------------------------------------------------- config

def _config(**model: object) -> dict[str, object]:
    return {"oci": {"region": "us-chicago-1", "compartment_id": "ocid1.compartment.oc1..x"},
            "models": {"m": {"model_id": "xai.grok-4", **model}}}


def test_config_circuit_breaker_section() -> None:
    assert parse_config(_config()).oci.circuit_breaker == CircuitBreaker(
        enabled=True, failures=3, cooldown=30.0)
    data = _config()
    data["oci"] = {**data["oci"], "circuit_breaker": {"failures": 5, "cooldown": 2.5}}  # type: ignore[dict-item]
    cb = parse_config(data).oci.circuit_breaker
    assert (cb.failures, cb.cooldown) == (5, 2.5)
    for bad, says in (({"failures": 0}, "failures"), ({"cooldown": 0}, "cooldown"),
                      ({"cooldwn": 1}, "unknown key")):
        data["oci"] = {**data["oci"], "circuit_breaker": bad}  # type: ignore[dict-item]
        with pytest.raises(ConfigError, match=says):
            parse_config(data)


def test_config_spread_and_weights() -> None:
    cfg = parse_config(_config(spread="weighted", weight=3,
                               failover=[{"region": "us-ashburn-1", "weight": 1},
                                         {"region": "eu-frankfurt-1"}]))
    assert cfg.models["m"].weights() == (3.0, 1.0, 1.0)
    assert parse_config(_config(failover=[{"region": "x"}])).models["m"].weights() is None
    with pytest.raises(ConfigError, match="weight: only used with spread: weighted"):
        parse_config(_config(failover=[{"region": "x", "weight": 2}]))
    with pytest.raises(ConfigError, match="weight above 0"):
        parse_config(_config(spread="weighted", weight=0))
    with pytest.raises(ConfigError, match="spread"):
        parse_config(_config(spread="round_robin"))
