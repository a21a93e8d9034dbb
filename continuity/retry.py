"""The retry policy, in one place: whether a failed attempt is tried again and when (the engine records that
in the ledger), and how much of it a command may wait for itself (the runner's inline budget).

A sink only says what happened (an Outcome); it never decides about retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from continuity.config.models import RetryPolicy
    from continuity.sinks.base import Outcome

# No single attempt of a sink runs longer than this, whatever its own settings say.
SINK_TIMEOUT = 60.0


def backoff(attempt: int, first: timedelta, cap: timedelta) -> timedelta:
    """Delay before retry number `attempt` (1-based): first, 2×first, 4×first, … capped."""
    delay: timedelta = first * (2 ** max(0, attempt - 1))
    return min(cap, delay)


def next_retry(policy: RetryPolicy, attempts: int, outcome: Outcome) -> timedelta | None:
    """How long until the next attempt of a row that failed `attempts` times with `outcome`; None: no more
    attempts (a permanent error, or the policy's attempts are used up)."""
    if outcome.status != "retryable" or attempts >= policy.attempts:
        return None
    delay = backoff(attempts, policy.first_delay, policy.max_delay)
    if outcome.retry_after is not None:  # the remote named its own time (a rate limit's reset)
        delay = max(delay, outcome.retry_after)
    return delay


@dataclass(frozen=True)
class Budget:
    """What a command may spend on one row, from `retry.inline_budget`, on a monotonic clock.

    Above zero it bounds the whole command: every attempt, the last one too, gets at most what is left of it,
    and what remains goes to `tick` or the daemon. Zero (and the daemon, which runs rows in the background)
    means no retries inline; each attempt then has SINK_TIMEOUT."""

    deadline: float | None

    @classmethod
    def of(cls, policy: RetryPolicy, inline: bool, now: float) -> Budget:
        seconds = policy.inline_budget.total_seconds() if inline else 0.0
        return cls(now + seconds if seconds > 0 else None)

    def attempt_limit(self, now: float) -> tuple[float, bool]:
        """Seconds the next attempt may take, and whether that is the budget's cut (not SINK_TIMEOUT)."""
        if self.deadline is not None and self.deadline - now < SINK_TIMEOUT:
            return max(self.deadline - now, 0.001), True
        return SINK_TIMEOUT, False

    def waits_for(self, delay: timedelta | None, now: float) -> bool:
        """Whether the command itself waits `delay` for an inline retry."""
        return delay is not None and self.deadline is not None and now + delay.total_seconds() < self.deadline
