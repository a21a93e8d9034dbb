"""Is a channel surging? Its `surge:` block's volume probes, read together, with hysteresis as a state table.

    observation:  above (over the threshold)  |  under (at or under it)  |  unknown (nothing could be read)

    normal ──above──► rising(n) ──n = after──► surging ──under──► easing(n) ──n = clear_after──► normal
      ▲                  │under                   ▲                  │above
      └──────────────────┘                        └──────────────────┘

An unknown observation changes nothing and counts for nothing: a mailbox that cannot be read is not a sign
that the surge is over, nor that one began. Reading the probes and this table is all that happens here; the
daemon decides what a change means (daemon/surge.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from continuity.clock import Clock
from continuity.config.models import Surge
from continuity.probes.base import ProbeContext
from continuity.probes.volume import Reading, ReadingError, VolumeProbe

if TYPE_CHECKING:
    from continuity.config.loader import LoadedConfig

State = Literal["normal", "rising", "surging", "easing"]
Event = Literal["surge_started", "surge_over"]

# (state, above?) → state before counting; the counters decide the rest.
TABLE: dict[tuple[State, bool], State] = {
    ("normal", True): "rising",
    ("normal", False): "normal",
    ("rising", True): "rising",
    ("rising", False): "normal",
    ("surging", True): "surging",
    ("surging", False): "easing",
    ("easing", True): "surging",
    ("easing", False): "easing",
}


@dataclass
class SurgeWatch:
    """The hysteresis state of one channel's surge watch. Feed it one observation per reading cycle."""

    spec: Surge
    state: State = "normal"
    count: int = 0

    @property
    def surging(self) -> bool:
        """Surging as far as the situation goes: confirmed, or easing but not yet over."""
        return self.state in ("surging", "easing")

    def observe(self, above: bool | None) -> list[Event]:
        if above is None:
            return []
        nxt = TABLE[(self.state, above)]
        if nxt != self.state:
            self.count = 0
        self.count += 1
        events: list[Event] = []
        if nxt == "rising" and self.count >= self.spec.after:
            nxt, self.count = "surging", 0
            events.append("surge_started")
        elif nxt == "easing" and self.count >= self.spec.clear_after:
            nxt, self.count = "normal", 0
            events.append("surge_over")
        self.state = nxt
        return events


@dataclass
class SurgeCheck:
    """One reading cycle of a channel: every probe's reading or failure, and what they add up to."""

    channel: str
    readings: list[Reading]
    failures: list[tuple[str, str]]  # (probe label, reason)
    above: bool | None
    latency: float
    state: State | None = None  # filled in by whoever keeps the watch

    @property
    def reason(self) -> str:
        """The readings over their thresholds (or all of them when none is), then what could not be read."""
        shown = [r for r in self.readings if r.above] or self.readings
        parts = [r.text for r in shown] + [f"{label}: {why}" for label, why in self.failures]
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "above": self.above, "state": self.state, "reason": self.reason,
                "latency_ms": round(self.latency * 1000, 1),
                "readings": [{"probe": r.probe, "value": r.value, "threshold": r.threshold, "above": r.above,
                              "text": r.text} for r in self.readings],
                "failures": [{"probe": label, "reason": why} for label, why in self.failures]}


def combine(readings: list[Reading], failed: int, how: str) -> bool | None:
    """Above, under, or unknown for the channel. `any`: one probe above is a surge, and it is only over when
    every probe read under; `all`: the other way round."""
    above = [r.above for r in readings]
    if how == "all":
        if any(a is False for a in above):
            return False
        return True if above and not failed else None
    if any(above):
        return True
    return False if above and not failed else None


@dataclass
class SurgeReader:
    """The live volume probes of every channel with a `surge:` block, built once and read every cycle."""

    loaded: LoadedConfig
    clock: Clock
    probes: dict[str, list[VolumeProbe]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ctx = ProbeContext(self.loaded.base_dir, self.clock)
        for channel, instances in self.loaded.surge_probes.items():
            self.probes[channel] = [VolumeProbe(inst.settings, ctx) for inst in instances]  # type: ignore[arg-type]

    @property
    def channels(self) -> list[str]:
        return list(self.probes)

    def spec(self, channel: str) -> Surge:
        spec = self.loaded.config.channels[channel].surge
        assert spec is not None
        return spec

    async def _guarded(self, probe: VolumeProbe) -> Reading | str:
        try:
            return await asyncio.wait_for(probe.read(), probe.timeout + 1.0)
        except ReadingError as exc:
            return str(exc)
        except TimeoutError:
            return f"timed out after {probe.timeout:g}s"
        except Exception as exc:  # a probe bug is a failed reading, never a dead daemon
            return f"probe error: {type(exc).__name__}: {exc}"

    async def read(self, channel: str) -> SurgeCheck:
        started = time.perf_counter()
        probes = self.probes[channel]
        outcomes = await asyncio.gather(*(self._guarded(p) for p in probes))
        readings = [o for o in outcomes if isinstance(o, Reading)]
        failures = [(p.label, o) for p, o in zip(probes, outcomes, strict=True) if isinstance(o, str)]
        above = combine(readings, len(failures), self.spec(channel).combine)
        return SurgeCheck(channel, readings, failures, above, time.perf_counter() - started)

    async def read_all(self, channels: list[str] | None = None) -> list[SurgeCheck]:
        return list(await asyncio.gather(*(self.read(c) for c in (channels or self.channels))))

    async def aclose(self) -> None:
        for probes in self.probes.values():
            for p in probes:
                await p.aclose()

