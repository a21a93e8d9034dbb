"""Run a channel's probes once, concurrently, each inside its own timeout: for `continuity check` and for
every probe cycle of the daemon (the same code, so what `check` shows is what the daemon sees)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from continuity.clock import Clock
from continuity.config.loader import LoadedConfig
from continuity.probes.base import Probe, ProbeContext, ProbeResult, Status, guarded_check
from continuity.probes.health import aggregate

# httpcore's pool rescans all its connections (and, for each idle one, all of them again, with a socket check)
# on every request and response, so one pool serving a thousand probes costs CPU that grows with the square of
# its size (over 20 s per cycle at 1,000 probes once most connections sit idle; see bench/probe_fanout.py).
# A small client per probe keeps every scan trivial (1,000 of them take about 8 MB, all sharing one TLS
# context), and a hanging peer never makes another probe wait in a queue until its own timeout. Two
# connections leave room for a redirect to another host.
PROBES_PER_CLIENT = 1
CONNECTIONS_PER_CLIENT = 2


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

    HTTP probes get small clients (one per PROBES_PER_CLIENT probes) kept open across cycles and sharing one
    TLS context, so a thousand of them neither load a thousand CA bundles nor crowd into one slow pool.
    """

    def __init__(self, loaded: LoadedConfig, clock: Clock, vantage: str | None = None, heard: Any = None) -> None:
        """`vantage`: only the probes that run there (None: every probe, as `continuity check` does);
        `heard`: the daemon's record of vantages heard from, for heartbeat probes."""
        self.loaded = loaded
        self._clients: list[Any] = []
        self._tls: Any = None
        self.probes: dict[str, list[Probe]] = {}
        self.vantages: dict[str, list[list[str]]] = {}  # per channel, per probe: where it runs
        http_count = 0
        own = loaded.config.daemon.vantage_name
        ctx = ProbeContext(loaded.base_dir, clock, vantage=vantage or own)  # named in the probes' User-Agent
        for channel, instances in loaded.probes.items():
            built = []
            health = loaded.config.channels[channel].health
            for inst in instances:
                where = (health.probes[inst.index].vantages if health else None) or [own]
                if vantage is not None and vantage not in where:
                    continue
                self.vantages.setdefault(channel, []).append(where)
                if inst.cls.type_name == "heartbeat":
                    built.append(inst.cls(inst.settings, ctx, heard=heard))  # type: ignore[call-arg]
                    continue
                # An http probe told not to verify TLS makes its own client (httpx verifies per client).
                if inst.cls.type_name == "http" and getattr(inst.settings, "verify_tls", True):
                    client = self.http_client(http_count // PROBES_PER_CLIENT)
                    built.append(inst.cls(inst.settings, ctx, client=client))  # type: ignore[call-arg]
                    http_count += 1
                else:
                    built.append(inst.cls(inst.settings, ctx))
            if built:
                self.probes[channel] = built

    def http_client(self, index: int = 0) -> Any:
        """The index-th client, made on first use (all of them share one TLS context: the CA bundle is read
        once)."""
        while len(self._clients) <= index:
            import httpx

            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=CONNECTIONS_PER_CLIENT,
                                  max_keepalive_connections=CONNECTIONS_PER_CLIENT)
            self._clients.append(httpx.AsyncClient(verify=self._tls, limits=limits, follow_redirects=False))
        return self._clients[index]

    @property
    def channels(self) -> list[str]:
        return list(self.probes)

    async def _guarded(self, probe: Probe) -> ProbeResult:
        return await guarded_check(probe)

    async def check(self, channel: str) -> ChannelCheck:
        started = time.perf_counter()
        probes = self.probes[channel]
        if len(probes) == 1:  # the common case needs no gather (and no task)
            results = [await self._guarded(probes[0])]
        else:
            results = list(await asyncio.gather(*(self._guarded(p) for p in probes)))
        health = self.loaded.config.channels[channel].health
        status, reason = aggregate(results, health.combine if health else "all")
        return ChannelCheck(channel, status, reason, results, time.perf_counter() - started)

    async def check_all(self, channels: list[str] | None = None) -> list[ChannelCheck]:
        return list(await asyncio.gather(*(self.check(c) for c in (channels or self.channels))))

    async def aclose(self) -> None:
        # Every probe closes what it made itself (an http probe with verify_tls: false has its own client);
        # the shared pools are closed here.
        for probes in self.probes.values():
            for p in probes:
                await p.aclose()
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
