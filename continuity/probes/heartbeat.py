"""Heartbeat check: has a vantage been heard from lately? Down once nothing came from it for `max_silence`.

A vantage is heard when a `continuity agent` posts its observations or when a device that cannot run the
agent (a router script, a cron job) pings `POST /api/heartbeat/NAME`. That is how a channel is watched from
outside: the office goes silent, the cloud node sees it, and the internet outage opens from where the
internet still works. The probe only reads what the daemon heard; it makes no connection of its own.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from pydantic import Field

from continuity.config.models import Duration, Name
from continuity.durations import format_duration
from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings


class Heard:
    """When each vantage was last heard from, in the daemon's memory: after a restart every vantage gets a
    fresh `max_silence` (the start counts as heard), so a restart alone never opens an outage."""

    def __init__(self, since: datetime) -> None:
        self.since = since
        self._last: dict[str, datetime] = {}

    def hear(self, vantage: str, at: datetime) -> None:
        self._last[vantage] = at

    def last(self, vantage: str) -> datetime | None:
        return self._last.get(vantage)

    def silence(self, vantage: str, now: datetime) -> timedelta:
        """How long nothing has come from the vantage (since the daemon started, if never)."""
        return now - self._last.get(vantage, self.since)

    def as_dict(self) -> dict[str, str]:
        return {name: at.isoformat() for name, at in sorted(self._last.items())}


class HeartbeatSettings(ProbeSettings):
    vantage: Name = Field(description="the vantage (agent or pinging device) that must keep reporting")
    max_silence: Duration = Field(default=timedelta(seconds=90),
                                  description="down once nothing was heard from the vantage for this long")


class HeartbeatProbe(Probe):
    type_name = "heartbeat"
    Settings = HeartbeatSettings
    description = "a vantage (agent or device pinging /api/heartbeat/NAME) was heard within max_silence"

    def __init__(self, settings: ProbeSettings, context: ProbeContext, heard: Heard | None = None) -> None:
        super().__init__(settings, context)
        self.heard = heard

    async def check(self) -> ProbeResult:
        started = time.perf_counter()
        s = self.settings
        assert isinstance(s, HeartbeatSettings)
        if self.heard is None:
            # `continuity check` hears nobody: only the daemon receives heartbeats. Not a failure of the channel.
            return self.result("degraded", started, f"vantage {s.vantage}: heartbeats are heard by the daemon only")
        silence = self.heard.silence(s.vantage, self.context.clock.now())
        if silence >= s.max_silence:
            never = " (not once since the daemon started)" if self.heard.last(s.vantage) is None else ""
            return self.result("down", started, f"vantage {s.vantage} silent: nothing heard for "
                               f"{format_duration(silence)}{never}")
        return self.result("up", started)
