"""A channel's health from its probes: aggregation, hysteresis and flapping, as an explicit state table.

    observation:  pass (up or degraded)  |  fail (down)

    up ──fail──► failing(n) ──n = fail_after──► down ──pass──► recovering(n) ──n = recover_after──► up
     ▲              │pass                         ▲                  │fail
     └──────────────┘                             └──────────────────┘

A channel that went down and up `flapping.changes` times within `flapping.window` is *flapping*: it is held
down (its outage stays open) until it has passed continuously for a whole window. `degraded` is a pass for
the hysteresis but is reported as a state of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from continuity.config.models import Health
from continuity.probes.base import ProbeResult, Status

State = Literal["up", "failing", "down", "recovering", "flapping"]
Event = Literal["went_down", "recovered", "flapping", "degraded", "degraded_cleared"]

# (state, observation passed?) → state before counting thresholds; the counters decide the rest.
TABLE: dict[tuple[State, bool], State] = {
    ("up", True): "up",
    ("up", False): "failing",
    ("failing", True): "up",
    ("failing", False): "failing",
    ("down", True): "recovering",
    ("down", False): "down",
    ("recovering", True): "recovering",
    ("recovering", False): "down",
    ("flapping", True): "flapping",
    ("flapping", False): "flapping",
}


def aggregate(results: Sequence[ProbeResult], combine: str) -> tuple[Status, str]:
    """One status for a channel from its probes' results, with the reasons of those that did not pass."""
    statuses = [r.status for r in results]
    bad = "; ".join(f"{r.probe}: {r.reason}" for r in results if r.status != "up" and r.reason)
    if combine == "any":
        status: Status = "up" if "up" in statuses else "degraded" if "degraded" in statuses else "down"
    else:
        status = "down" if "down" in statuses else "degraded" if "degraded" in statuses else "up"
    return status, bad


@dataclass
class ChannelHealth:
    """The hysteresis state of one channel. Feed it one aggregated observation per probe cycle."""

    spec: Health
    state: State = "up"
    count: int = 0
    degraded: bool = False
    changes: deque[datetime] = field(default_factory=deque)
    passing_since: datetime | None = None
    last_status: Status | None = None
    last_reason: str = ""

    @property
    def is_down(self) -> bool:
        """Down as far as outages go: down, still recovering, or held down by flapping."""
        return self.state in ("down", "recovering", "flapping")

    def _change(self, now: datetime) -> bool:
        """Record an up/down change; True when that makes the channel flapping."""
        self.changes.append(now)
        window = self.spec.flapping.window
        while self.changes and now - self.changes[0] > window:
            self.changes.popleft()
        return len(self.changes) >= self.spec.flapping.changes

    def observe(self, status: Status, reason: str, now: datetime) -> list[Event]:
        passed = status != "down"
        self.last_status, self.last_reason = status, reason
        events: list[Event] = []
        if passed and status == "degraded" and not self.degraded and self.state == "up":
            self.degraded = True
            events.append("degraded")
        elif self.degraded and (status == "up" or self.state != "up"):
            self.degraded = False
            if status == "up":
                events.append("degraded_cleared")

        nxt = TABLE[(self.state, passed)]
        if nxt != self.state:
            self.count = 0
        self.count += 1
        if nxt == "failing" and self.count >= self.spec.fail_after:
            nxt, self.count = "down", 0
            events.append("went_down")
            if self._change(now):
                nxt = "flapping"
                events.append("flapping")
        elif nxt == "recovering" and self.count >= self.spec.recover_after:
            if self._change(now):
                nxt = "flapping"
                events.append("flapping")
            else:
                nxt, self.count = "up", 0
                events.append("recovered")
        elif nxt == "flapping":
            self.passing_since = (self.passing_since or now) if passed else None
            if self.passing_since is not None and now - self.passing_since >= self.spec.flapping.window:
                nxt, self.count, self.passing_since = "up", 0, None
                self.changes.clear()
                events.append("recovered")
        if nxt == "flapping" and self.state != "flapping":
            self.passing_since = now if passed else None
        self.state = nxt
        return events
