"""When to try OCI again, and where: the retry and failover policy. Pure (no I/O, no clock).

Contract: after a failed attempt, :meth:`RetryPolicy.after` answers either ``None`` (give up:
the failure is final, or the attempts are spent) or a :class:`Step` naming the target to try
next (an index into the request's targets: the model's primary and failovers in the order
:meth:`app.oci.breaker.Breakers.plan` gave, open circuits left out) and the seconds to wait
first. The caller guarantees that nothing has reached the client yet.

- Only retryable failures are retried (429, 5xx but 501, timeouts, connection failures, an answer
  cut off before its end), at most ``max_attempts`` attempts in all.
- With failovers configured, throttling, server errors, timeouts and connection failures move to
  the next target at once (another region answers without waiting); coming back round to the
  primary waits like a retry. Other retryable failures retry the same target.
- Waits are exponential with full jitter, capped at ``backoff_max``; an upstream ``retry-after``
  is a floor (also capped, so one slow hint cannot hold a request for minutes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from app.config import Retries
from app.errors import UpstreamKind
from app.oci.errors import UpstreamError

#: kinds that say "this endpoint is struggling", so another endpoint may do better
FAILOVER_KINDS = frozenset(
    {
        UpstreamKind.RATE_LIMITED,
        UpstreamKind.SERVER_ERROR,
        UpstreamKind.CONNECT_ERROR,
        UpstreamKind.TIMEOUT,
    }
)


@dataclass(frozen=True, slots=True)
class Step:
    target: int  #: index of the target to try next
    delay: float  #: seconds to wait before that attempt
    failover: bool  #: whether it moves to another target


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 4.0
    #: the jitter source, ``random.uniform``-shaped (tests pass a fixed one)
    uniform: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    @classmethod
    def from_config(cls, retries: Retries) -> RetryPolicy:
        return cls(retries.max_attempts, retries.backoff_base, retries.backoff_max)

    def after(self, attempt: int, target: int, targets: int, err: UpstreamError) -> Step | None:
        """The next step after attempt number ``attempt`` (0-based) at ``target`` failed."""
        if not err.retryable or attempt + 1 >= self.max_attempts:
            return None
        if targets > 1 and err.upstream_kind in FAILOVER_KINDS:
            nxt = (target + 1) % targets
            delay = 0.0 if nxt else self.backoff(attempt, err.retry_after)
            return Step(nxt, delay, failover=True)
        return Step(target, self.backoff(attempt, err.retry_after), failover=False)

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; an upstream ``retry-after`` is a floor."""
        delay = self.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay
