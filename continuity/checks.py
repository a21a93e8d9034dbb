"""Run a channel's probes once, concurrently, each inside its own timeout: for `continuity check` and for
every probe cycle of the daemon (the same code, so what `check` shows is what the daemon sees)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from continuity.clock import Clock
from continuity.config.loader import LoadedConfig
from continuity.probes.base import Probe, ProbeContext, ProbeResult, Status
from continuity.probes.health import aggregate


@dataclass
class ChannelCheck:
    channel: str
    status: Status
    reason: str
    results: list[ProbeResult]
    latency: float

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "status": self.status, "reason": self.reason,
                "latency_ms": round(self.latency * 1000, 1), "probes": [r.as_dict() for r in self.results]}


class ProbeSet:
    """The live probe objects of every channel with health checks, built once and reused every cycle.

    HTTP probes share one connection pool, so a thousand of them do not open a thousand pools.
    """

    def __init__(self, loaded: LoadedConfig, clock: Clock) -> None:
        self.loaded = loaded
        self._client: Any = None
        ctx = ProbeContext(loaded.base_dir, clock)
        self.probes: dict[str, list[Probe]] = {}
        for channel, instances in loaded.probes.items():
            built = []
            for inst in instances:
                if inst.cls.type_name == "http":
                    built.append(inst.cls(inst.settings, ctx, client=self.http_client()))  # type: ignore[call-arg]
                else:
                    built.append(inst.cls(inst.settings, ctx))
            self.probes[channel] = built

    def http_client(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
                                             follow_redirects=False)
        return self._client

    @property
    def channels(self) -> list[str]:
        return list(self.probes)

    async def _guarded(self, probe: Probe) -> ProbeResult:
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(probe.check(), probe.timeout + 1.0)
        except TimeoutError:
            return ProbeResult("down", time.perf_counter() - started, f"timed out after {probe.timeout:g}s",
                               probe.label)
        except Exception as exc:  # a probe bug is a failed check, never a dead daemon
            return ProbeResult("down", time.perf_counter() - started, f"probe error: {type(exc).__name__}: {exc}",
                               probe.label)

    async def check(self, channel: str) -> ChannelCheck:
        started = time.perf_counter()
        probes = self.probes[channel]
        results = list(await asyncio.gather(*(self._guarded(p) for p in probes)))
        health = self.loaded.config.channels[channel].health
        status, reason = aggregate(results, health.combine if health else "all")
        return ChannelCheck(channel, status, reason, results, time.perf_counter() - started)

    async def check_all(self, channels: list[str] | None = None) -> list[ChannelCheck]:
        return list(await asyncio.gather(*(self.check(c) for c in (channels or self.channels))))

    async def aclose(self) -> None:
        for probes in self.probes.values():
            for p in probes:
                if self._client is None or p.type_name != "http":
                    await p.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
