"""The contract every probe fills: one check, one ProbeResult, never an exception.

A probe observes and nothing else: it knows nothing of situations or sinks. Health (hysteresis, flapping)
and the decision to open an outage live elsewhere.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from continuity.clock import Clock
from continuity.config.models import Duration

Status = Literal["up", "degraded", "down"]


class ProbeSettings(BaseModel):
    """Settings shared by every probe type; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = Field(default=None, description="label in tables and metrics (default: the type)")
    timeout: Duration = timedelta(seconds=5)


@dataclass(frozen=True)
class ProbeResult:
    status: Status
    latency: float
    reason: str = ""
    probe: str = ""

    @property
    def up(self) -> bool:
        return self.status == "up"

    def as_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "status": self.status, "latency_ms": round(self.latency * 1000, 1),
                "reason": self.reason}


@dataclass(frozen=True)
class ProbeContext:
    """What a probe knows of where it runs: the config's folder, the clock, and its vantage (the daemon's node
    or an agent's site), which probes that speak a protocol with a User-Agent put into it."""

    base_dir: Path
    clock: Clock
    vantage: str | None = None

    @property
    def user_agent(self) -> str:
        """`continuity/VERSION (vantage office)`: the probed side can tell vantages apart in its logs."""
        from continuity import __version__

        return f"continuity/{__version__}" + (f" (vantage {self.vantage})" if self.vantage else "")


class Probe:
    """Base class: set the class attributes, implement `check`. `check` must not raise for a failing peer:
    return a `down` result with the reason (the caller still guards against bugs and enforces the timeout)."""

    type_name: ClassVar[str]
    Settings: ClassVar[type[ProbeSettings]] = ProbeSettings
    description: ClassVar[str] = ""

    def __init__(self, settings: ProbeSettings, context: ProbeContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def label(self) -> str:
        return self.settings.name or self.type_name

    @property
    def timeout(self) -> float:
        return self.settings.timeout.total_seconds()

    async def check(self) -> ProbeResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release pooled clients; called once when the daemon stops."""

    # helpers for subclasses
    def result(self, status: Status, started: float, reason: str = "") -> ProbeResult:
        return ProbeResult(status, time.perf_counter() - started, reason, self.label)


async def guarded_check(probe: Probe, *, error_text: bool = True) -> ProbeResult:
    """A probe's check that always ends in a result: its own timeout plus a second of grace, and a probe bug
    is a failed check, never a dead daemon or agent. `error_text=False` names only the exception's type (an
    agent sends the result off the machine)."""
    started = time.perf_counter()
    try:
        # asyncio.timeout, not wait_for: no extra task per probe and cycle.
        async with asyncio.timeout(probe.timeout + 1.0):
            return await probe.check()
    except TimeoutError:
        return ProbeResult("down", time.perf_counter() - started, f"timed out after {probe.timeout:g}s",
                           probe.label)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}" if error_text else type(exc).__name__
        return ProbeResult("down", time.perf_counter() - started, f"probe error: {detail}", probe.label)
