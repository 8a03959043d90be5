"""Circuit breakers per upstream target, and the order of a request's targets. Pure: no I/O;
the clock and the random source are injected.

Contract: one :class:`Breakers` registry per worker process holds a :class:`Breaker` per target
key (the caller's: base URL + OCI model or endpoint id). :meth:`Breakers.plan` gives the
indices of a model's targets a request tries, in order; :meth:`Breakers.begin` is called as an
attempt goes out and :meth:`Breakers.end` with its :func:`outcome` (always, also when the
attempt is cancelled: the half-open probe slot is released there).

- **Closed** (0): attempts go through; ``failures`` consecutive failures open the circuit.
- **Open** (2): the target is left out of every plan for ``cooldown`` seconds (counted from
  the last failure). An attempt already in flight that fails while open restarts the cooldown.
- **Half-open** (1): the cooldown is over. The next request that plans the target keeps it in
  its place and its attempt there is the one probe; other requests skip the target while the
  probe is out. A success closes the circuit, a failure re-opens it for another cooldown, a
  neutral answer frees the probe slot for the next request.
- Any success closes the circuit and clears the count, whatever the state.
- **Every target open** (or half-open with the probe out): the plan is all the targets, the one
  whose cooldown ends first leading (ties: configured order). A model never fails fast because
  of its breakers; it degrades to the gateway's behaviour without them (try, time out, fail
  over), and whichever target answers first closes its circuit.
- What counts (:func:`outcome`): failures are the retryable upstream errors that say the
  target is not answering — timeouts, connection failures, 5xx but 501, an answer cut off —
  and not 429. A 429 is OCI answering within milliseconds that *we* should slow down: the
  retry policy already backs off or fails over per request, and opening the circuit would
  move the region's whole load onto the next target at once, where the same tenancy is
  likely to be throttled too. So a 429, like every non-retryable answer (400, 401, 404, 501)
  and a cancelled attempt, is neutral: no failure, no success.
- **Spreading** (``weights``): the first target is drawn among the available ones with
  probability proportional to its weight (``rng``); the rest follow in configured order.
  Without weights the order is the configured one (primary first).
- Transitions go to ``on_transition(breaker, old, new)`` (metrics and logs are the caller's).
  No lock: one registry lives on one event loop and its methods never await.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum

from app.config import CircuitBreaker
from app.errors import UpstreamKind
from app.oci.errors import UpstreamError


class State(IntEnum):
    """The gauge value of each state (``gateway_upstream_circuit_state``)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class Outcome(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


def outcome(err: UpstreamError | None) -> Outcome:
    """What an attempt's result says about its target (see the module docstring)."""
    if err is None:
        return Outcome.SUCCESS
    if err.retryable and err.upstream_kind != UpstreamKind.RATE_LIMITED:
        return Outcome.FAILURE
    return Outcome.NEUTRAL


class Breaker:
    """One target's circuit. Read ``state`` through :meth:`Breakers.state` (it moves with time)."""

    __slots__ = ("failures", "key", "probing", "state", "until")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.state = State.CLOSED
        self.failures = 0  #: consecutive failures
        self.until = 0.0  #: end of the cooldown while open (the registry's clock)
        self.probing = False  #: the half-open probe is in flight


@dataclass(frozen=True, slots=True)
class Ticket:
    """One attempt at a target, from :meth:`Breakers.begin` to :meth:`Breakers.end`."""

    breaker: Breaker
    seen: State  #: the state when the attempt went out (span attribute, logs)
    probe: bool  #: this attempt holds the half-open probe slot


Transition = Callable[[Breaker, State, State], None]


class Breakers:
    def __init__(
        self,
        settings: CircuitBreaker | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_transition: Transition | None = None,
    ) -> None:
        self.settings = settings or CircuitBreaker()
        self.clock = clock
        #: the spreading draw; tests seed it
        self.rng = rng or random.Random()
        self.on_transition = on_transition
        self._breakers: dict[Hashable, Breaker] = {}

    def get(self, key: Hashable) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(key)
        return breaker

    def state(self, key: Hashable) -> State:
        """The target's state now: an open circuit whose cooldown ended turns half-open here."""
        breaker = self.get(key)
        if breaker.state == State.OPEN and self.clock() >= breaker.until:
            self._move(breaker, State.HALF_OPEN)
        return breaker.state

    def available(self, key: Hashable) -> bool:
        """Closed, or half-open with the probe slot free."""
        state = self.state(key)
        return state == State.CLOSED or (state == State.HALF_OPEN and not self.get(key).probing)

    def plan(self, keys: Sequence[Hashable], weights: Sequence[float] | None = None) -> list[int]:
        """Indices into ``keys`` (the model's targets in configured order) for one request."""
        if not self.settings.enabled:
            order = list(range(len(keys)))
        else:
            order = [i for i, key in enumerate(keys) if self.available(key)]
            if not order:  # every target open: the soonest back first, none left out
                return sorted(range(len(keys)), key=lambda i: (self.get(keys[i]).until, i))
        if weights is not None and len(order) > 1:
            first = self._draw(order, weights)
            order.remove(first)
            order.insert(0, first)
        return order

    def begin(self, key: Hashable) -> Ticket:
        """An attempt goes to ``key`` now; the first one at a half-open target is its probe."""
        breaker = self.get(key)
        seen = self.state(key) if self.settings.enabled else State.CLOSED
        probe = seen == State.HALF_OPEN and not breaker.probing
        if probe:
            breaker.probing = True
        return Ticket(breaker, seen, probe)

    def end(self, ticket: Ticket, result: Outcome) -> None:
        """The attempt of ``ticket`` ended with ``result`` (call exactly once per ticket)."""
        breaker = ticket.breaker
        if ticket.probe:
            breaker.probing = False
        if not self.settings.enabled or result == Outcome.NEUTRAL:
            return
        if result == Outcome.SUCCESS:
            breaker.failures = 0
            if breaker.state != State.CLOSED:
                self._move(breaker, State.CLOSED)
            return
        breaker.failures += 1
        state = breaker.state
        if state == State.CLOSED and breaker.failures < self.settings.failures:
            return
        breaker.until = self.clock() + self.settings.cooldown
        if state != State.OPEN:
            self._move(breaker, State.OPEN)

    def _move(self, breaker: Breaker, new: State) -> None:
        old, breaker.state = breaker.state, new
        if self.on_transition is not None:
            self.on_transition(breaker, old, new)

    def _draw(self, order: list[int], weights: Sequence[float]) -> int:
        total = sum(weights[i] for i in order)
        if total <= 0:
            return order[0]
        x = self.rng.random() * total
        for i in order:
            x -= weights[i]
            if x < 0:
                return i
        return next(i for i in reversed(order) if weights[i] > 0)  # float rounding at the top
