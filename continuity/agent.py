"""`continuity agent`: watch channels from a remote site and report to the daemon, from behind NAT.

The agent keeps no database and accepts no connection. It asks the daemon which probes run at its vantage
(`GET /api/probes?vantage=NAME`), runs them on their channel's schedule with the same probe code the daemon
uses, and posts each cycle's results (`POST /api/observations`); those posts are its heartbeat. A server that
is away is retried with backoff (said once in the log, and once again when it is back); the probes are
fetched again every REFETCH_EVERY and whenever the daemon's answer shows the assignment changed, so a new
config needs no restart here. A token the server refuses is a clear error (AgentAuthError, exit 2), never a
silent loop.

Probe settings come as written in the daemon's config, `${VAR}` references unresolved: the agent resolves
them from its own environment, so passwords never cross the wire (and a site can be told apart by a variable
of its own, `headers: {X-Site: "${SITE}"}`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity import __version__
from continuity.clock import Clock, SystemClock
from continuity.logs import event
from continuity.probes.base import Probe, ProbeContext, ProbeResult, guarded_check

REFETCH_EVERY = 30.0  # seconds between asking the daemon for the probes again
HEARTBEAT_EVERY = 5.0  # an agent with nothing to report still posts this often, so it is heard
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0  # one request per retry: cheap for the server, and a restarted daemon hears its agents soon
REQUEST_TIMEOUT = 10.0


class AgentAuthError(Exception):
    """The daemon refused the token (401) or has the API switched off (403): retrying cannot help."""


class Refused(Exception):
    """The daemon refused one report (a channel its config no longer has): the agent refetches its probes."""


class ServerAway(Exception):
    """The daemon could not be reached or answered 5xx: retried with backoff."""


@dataclass
class ChannelPlan:
    """One channel's probes at this vantage and when they run next."""

    channel: str
    every: float
    combine: str
    probes: list[Probe]
    due: float = 0.0


@dataclass
class Agent:
    """The agent's loop. `server` is the daemon's base URL, `token` the daemon's API token."""

    server: str
    vantage: str
    token: str
    log: logging.Logger
    clock: Clock = field(default_factory=SystemClock)
    base_dir: Path = field(default_factory=Path.cwd)
    environ: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.plans: dict[str, ChannelPlan] = {}
        self.version: str | None = None
        self.stopping = asyncio.Event()
        self._away_since: float | None = None
        self._backoff = FIRST_BACKOFF
        self._retry_at = 0.0
        self._last_post = 0.0
        self._fetched_at = 0.0
        self._client: Any = None
        self._bad: set[str] = set()  # probe problems already logged
        self.auth_error: AgentAuthError | None = None  # a refused token seen inside a cycle's task

    # the daemon's API -----------------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        import httpx

        try:
            resp = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerAway(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if resp.status_code in (401, 403):
            try:
                why = resp.json().get("error", "")
            except ValueError:
                why = resp.text[:200]
            raise AgentAuthError(f"{self.server} refused the agent's token ({resp.status_code}: {why}); give the "
                                 "daemon's API token (daemon.token_env) in the variable --token-env names")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ServerAway(f"HTTP {resp.status_code}")
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            raise ServerAway(f"HTTP {resp.status_code}: not JSON (is {self.server} a continuity daemon?)") from None
        if resp.status_code >= 400:
            raise Refused(f"HTTP {resp.status_code}: {body.get('error', '')}")
        return body

    def _away(self, why: str) -> None:
        now = time.monotonic()
        if self._away_since is None:
            self._away_since = now
            event(self.log, "agent.server_away", f"cannot reach {self.server} ({why}); retrying with backoff, "
                  "probing goes on", logging.WARNING, server=self.server)
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def _back(self) -> None:
        if self._away_since is not None:
            event(self.log, "agent.server_back", f"{self.server} reachable again after "
                  f"{time.monotonic() - self._away_since:.0f}s", server=self.server)
        self._away_since = None
        self._backoff = FIRST_BACKOFF
        self._retry_at = 0.0

    async def fetch(self) -> None:
        body = await self._request("GET", "/api/probes", params={"vantage": self.vantage})
        self._fetched_at = time.monotonic()
        if body.get("version") == self.version:
            return
        await self._close_probes()
        self.plans = self.build(body.get("channels") or {})
        self.version = body.get("version")
        count = sum(len(p.probes) for p in self.plans.values())
        event(self.log, "agent.probes", f"vantage {self.vantage}: {count} probe(s) on {len(self.plans)} channel(s) "
              f"(assignment {self.version})", vantage=self.vantage, channels=list(self.plans))

    def build(self, channels: dict[str, Any]) -> dict[str, ChannelPlan]:
        """Probe objects from the daemon's assignment; a probe this agent cannot set up (an unset variable
        here, a type this version does not know) is left out and said once in the log."""
        from pydantic import ValidationError

        from continuity.config.envrefs import EnvRefError, resolve_refs
        from continuity.probes import PROBES, probe_class

        def resolve(value: Any) -> Any:
            if isinstance(value, str) and "${" in value:
                return resolve_refs(value, self.environ, self.base_dir)
            if isinstance(value, dict):
                return {k: resolve(v) for k, v in value.items()}
            if isinstance(value, list):
                return [resolve(v) for v in value]
            return value

        ctx = ProbeContext(self.base_dir, self.clock, vantage=self.vantage)  # named in the User-Agent
        plans: dict[str, ChannelPlan] = {}
        for channel, spec in channels.items():
            probes: list[Probe] = []
            for i, raw in enumerate(spec.get("probes") or []):
                where = f"channels.{channel}.health.probes[{i}]"
                try:
                    type_name = raw.get("type")
                    if type_name not in PROBES:
                        raise ValueError(f"unknown probe type {type_name!r} (agent {__version__})")
                    cls = probe_class(type_name)
                    probes.append(cls(cls.Settings.model_validate(resolve(raw)), ctx))
                except (EnvRefError, ValidationError, ValueError) as exc:
                    text = str(exc).splitlines()[0] if not isinstance(exc, ValidationError) else \
                        "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                    if where not in self._bad:
                        self._bad.add(where)
                        event(self.log, "agent.probe_skipped", f"{where}: cannot run here: {text}",
                              logging.ERROR, channel=channel)
            if probes:
                plans[channel] = ChannelPlan(channel, max(float(spec.get("every", 30)), 1.0),
                                             str(spec.get("combine", "all")), probes)
        return plans

    # running ------------------------------------------------------------------------------------------------

    async def _guarded(self, probe: Probe) -> ProbeResult:
        return await guarded_check(probe, error_text=False)

    async def cycle(self, plan: ChannelPlan) -> dict[str, Any]:
        from continuity.probes.health import aggregate

        results = list(await asyncio.gather(*(self._guarded(p) for p in plan.probes)))
        status, reason = aggregate(results, plan.combine)
        return {"channel": plan.channel, "status": status, "reason": reason,
                "probes": [r.as_dict() for r in results]}

    async def post(self, observations: list[dict[str, Any]]) -> None:
        """Report (an empty list is a plain heartbeat); while the server is away nothing is sent before the
        backoff allows, and what was seen meanwhile is dropped: only the present counts."""
        if time.monotonic() < self._retry_at:
            return
        try:
            body = await self._request("POST", "/api/observations",
                                       json={"vantage": self.vantage, "observations": observations})
        except ServerAway as exc:
            self._away(str(exc))
            return
        except Refused as exc:  # a stale assignment (the daemon's config changed): fetch it again
            event(self.log, "agent.refused", f"the server refused a report ({exc}); fetching the probes again",
                  logging.WARNING, server=self.server)
            self._fetched_at = 0.0
            return
        self._back()
        self._last_post = time.monotonic()
        if body.get("version") and body["version"] != self.version:
            self._fetched_at = 0.0  # the assignment changed (a restarted daemon, a new config): refetch now

    async def run(self) -> None:
        """Until stop(): fetch, probe on schedule, post. Raises AgentAuthError for a refused token."""
        import httpx

        self._client = httpx.AsyncClient(
            base_url=self.server.rstrip("/"), timeout=REQUEST_TIMEOUT,
            headers={"Authorization": f"Bearer {self.token}",
                     "User-Agent": ProbeContext(self.base_dir, self.clock, self.vantage).user_agent})
        running: set[asyncio.Task[None]] = set()
        try:
            event(self.log, "agent.start", f"agent at vantage {self.vantage} reporting to {self.server}",
                  vantage=self.vantage, server=self.server)
            while not self.stopping.is_set():
                now = time.monotonic()
                if now - self._fetched_at >= REFETCH_EVERY and now >= self._retry_at:
                    try:
                        await self.fetch()
                        self._back()
                    except ServerAway as exc:
                        self._away(str(exc))
                    except Refused as exc:
                        self._away(f"probes refused: {exc}")
                for plan in list(self.plans.values()):
                    if plan.due <= now:
                        plan.due = now + plan.every
                        task = asyncio.ensure_future(self._cycle_and_post(plan))
                        running.add(task)
                        task.add_done_callback(running.discard)
                if now - self._last_post >= HEARTBEAT_EVERY and not running and self.version is not None:
                    await self.post([])
                wake = min([p.due for p in self.plans.values()] + [now + 0.5])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), max(0.05, wake - time.monotonic()))
            for task in running:
                task.cancel()
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)
            await self._close_probes()
            await self._client.aclose()
            event(self.log, "agent.stop", "agent stopped", vantage=self.vantage)

    async def _cycle_and_post(self, plan: ChannelPlan) -> None:
        observation = await self.cycle(plan)
        try:
            await self.post([observation])
        except AgentAuthError as exc:
            self.auth_error = exc
            self.stopping.set()

    async def _close_probes(self) -> None:
        for plan in self.plans.values():
            for p in plan.probes:
                try:
                    await p.aclose()
                except Exception:  # noqa: S112 (closing is best effort)
                    continue

    def stop(self) -> None:
        self.stopping.set()


async def run_agent(agent: Agent) -> None:
    """Run until SIGTERM/SIGINT; re-raise a refused token however it surfaced."""
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    try:
        await agent.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if agent.auth_error is not None:
        raise agent.auth_error
