"""A channel's verdict from several vantage points: down only when at least `quorum` of them see it down.

Each vantage (a daemon node, a `continuity agent`) reports what its own probes of the channel found. Every
vantage keeps its own hysteresis (`fail_after` failures in a row before it counts as seeing the channel down,
`recover_after` passes before it stops), and the channel's verdict is a vote of the vantages that report:

    reporting vantages seeing it down >= quorum  →  down
    fewer                                        →  up (or degraded, when one of them sees it slow)
    fewer vantages report than quorum needs      →  no verdict: the channel keeps its state, and staff are
                                                    told once that monitoring is degraded (who went silent)

A vantage is *silent* when nothing came from it for `silent_after` (three cycles and a grace); a silent vantage
counts neither way. One site's own network trouble is then never reported as the customers' outage, and a
site that goes quiet is a monitoring problem, not an outage (a heartbeat probe makes it one where wanted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from continuity.config.models import Flapping, Health
from continuity.probes.base import Status
from continuity.probes.health import ChannelHealth

if TYPE_CHECKING:
    from continuity.engine import Engine
    from continuity.store.protocol import Store

# How long a vantage may stay quiet before it is silent: three of its cycles and this grace (an agent's post
# crossing the internet, a cycle waiting for a probe's timeout).
SILENT_CYCLES = 3
SILENT_GRACE = timedelta(seconds=2)
# A vantage not heard since the daemon started gets this much longer: an agent retries a server that was away
# at most every 5 s (agent.MAX_BACKOFF), so a restart alone must not make it silent (and tell staff so).
START_GRACE = timedelta(seconds=5)


def channel_vantages(health: Health, own: str) -> list[str]:
    """Every vantage a channel's probes run at, in order of first mention (the default: this node)."""
    seen: dict[str, None] = {}
    for spec in health.probes:
        for name in spec.vantages or [own]:
            seen.setdefault(name, None)
    return list(seen)


def needs_quorum(health: Health, own: str) -> bool:
    """True when the channel is seen from anywhere but this node alone (or must be confirmed by several)."""
    return health.quorum > 1 or channel_vantages(health, own) != [own]


def probe_runs_at(vantages: Sequence[str] | None, vantage: str, own: str) -> bool:
    return vantage in (vantages or [own])


@dataclass
class VantageView:
    """What one vantage last reported about one channel, and its own hysteresis."""

    name: str
    health: ChannelHealth
    status: Status | None = None
    reason: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    at: datetime | None = None

    def as_dict(self, silent: bool) -> dict[str, Any]:
        return {"vantage": self.name, "status": self.status, "sees_down": self.health.is_down,
                "silent": silent, "reason": self.reason, "at": self.at.isoformat() if self.at else None,
                "probes": self.results}


@dataclass(frozen=True)
class Verdict:
    """The vote of one evaluation. `status` None: too few vantages report to decide (the state is kept)."""

    status: Status | None
    reason: str
    down: list[str]
    reporting: list[str]
    silent: list[str]


class Quorum:
    """The per-vantage views of one channel and the vote over them."""

    def __init__(self, spec: Health, vantages: Iterable[str], since: datetime) -> None:
        self.spec = spec
        self.since = since
        # Each vantage's own hysteresis; flapping is judged once, on the channel's verdict.
        own_spec = spec.model_copy(update={"flapping": Flapping(changes=1_000_000, window=spec.flapping.window)})
        self.views = {name: VantageView(name, ChannelHealth(own_spec)) for name in vantages}
        self.silent_after = SILENT_CYCLES * spec.every + SILENT_GRACE
        self.told_silent: tuple[str, ...] = ()  # the silent vantages staff were last told about

    def observe(self, vantage: str, status: Status, reason: str, results: list[dict[str, Any]],
                now: datetime) -> None:
        """One report of a vantage (one cycle of its probes of this channel). Unknown vantages are ignored:
        only those the config names for this channel vote."""
        view = self.views.get(vantage)
        if view is None:
            return
        view.health.observe(status, reason, now)
        view.status, view.reason, view.results, view.at = status, reason, results, now

    def is_silent(self, view: VantageView, now: datetime) -> bool:
        if view.at is None:
            return now - self.since > self.silent_after + START_GRACE
        return now - view.at > self.silent_after

    def verdict(self, now: datetime) -> Verdict:
        silent = [v.name for v in self.views.values() if self.is_silent(v, now)]
        reporting = [v for v in self.views.values() if v.at is not None and v.name not in silent]
        down = [v for v in reporting if v.health.is_down]
        names = [v.name for v in reporting]
        if len(down) >= self.spec.quorum:
            reason = "; ".join(f"{v.name}: {v.reason}" if v.reason else v.name for v in down)
            return Verdict("down", reason, [v.name for v in down], names, silent)
        if len(reporting) < self.spec.quorum:
            return Verdict(None, "", [v.name for v in down], names, silent)
        slow = [v for v in reporting if v.status == "degraded"]
        reason = "; ".join(f"{v.name}: {v.reason}" for v in slow if v.reason)
        return Verdict("degraded" if slow else "up", reason, [v.name for v in down], names, silent)

    def degraded_news(self, verdict: Verdict) -> list[str] | None:
        """The silent vantages to tell staff about, once per change; None when there is nothing new to say.
        Only a quorum lost to silence is news (not the first seconds after a start, before anyone reported)."""
        lost = verdict.status is None and bool(verdict.silent)
        if not lost:
            self.told_silent = ()
            return None
        key = tuple(verdict.silent)
        if key == self.told_silent:
            return None
        self.told_silent = key
        return list(key)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {"quorum": self.spec.quorum,
                "vantages": {n: v.as_dict(self.is_silent(v, now)) for n, v in self.views.items()}}


# A vantage gone silent: staff told once, through the ledger -------------------------------------------------

# A silent vantage is a monitoring problem, never the customers': it gets a situation of its own, scoped to the
# vantage (not to a channel, so the status page, the banner and the uptime report never show it), whose
# playbook has staff steps only. The store keeps it open while the vantage stays silent, so a restart, a second
# channel losing its quorum or a new leader finds it open and tells nobody again; the vantage's first report
# closes it ("monitoring restored").
MONITORING_KIND = "monitoring"
MONITORING_PLAYBOOK = "monitoring-degraded"


def monitoring_lost(engine: Engine, vantage: str, channels: Sequence[str]) -> int | None:
    """Open the monitoring situation of a silent vantage (its playbook tells staff at once). Returns the new
    situation's id; None when one is open already (told before: nothing is sent again)."""
    from continuity.engine import VANTAGE_SCOPE

    scope = VANTAGE_SCOPE + vantage
    if engine.store.find_open(MONITORING_KIND, scope) is not None:
        return None
    reason = (f"vantage {vantage} silent: {', '.join(channels)} cannot reach the quorum of vantages; "
              "no outage is opened or closed on its account")[:500]
    opened = engine.open(scope, reason=reason, by="daemon", source="daemon", kind=MONITORING_KIND,
                         playbook=MONITORING_PLAYBOOK, data={"vantage": vantage, "channels": list(channels)})
    return opened.situation.id if opened.created else None


def monitoring_back(engine: Engine, vantage: str, why: str = "reports again") -> int | None:
    """Close the monitoring situation of a vantage heard again (its playbook says monitoring is restored).
    Returns the closed situation's id, None when none was open."""
    from continuity.engine import VANTAGE_SCOPE

    closed = engine.close(VANTAGE_SCOPE + vantage, by="daemon", note=f"vantage {vantage} {why}",
                          kind=MONITORING_KIND)
    return closed.situation.id if closed.closed and closed.situation is not None else None


def monitoring_forgotten(engine: Engine, watched: set[str]) -> list[int]:
    """Close the monitoring situations of vantages no channel names any more (the config changed while one
    was silent): nothing would ever close them otherwise. Returns the closed situations' ids."""
    return [sid for name in sorted(silent_vantages(engine.store) - watched)
            if (sid := monitoring_back(engine, name, "is no longer a vantage of any channel")) is not None]


def silent_vantages(store: Store) -> set[str]:
    """The vantages with a monitoring situation open (read once when a node starts to lead)."""
    from continuity.engine import VANTAGE_SCOPE

    return {s.channel[len(VANTAGE_SCOPE):] for s in store.open_situations()
            if s.kind == MONITORING_KIND and s.channel.startswith(VANTAGE_SCOPE)}


# What agents fetch and post -------------------------------------------------------------------------------

# Probe types an agent cannot run: a heartbeat is what the daemon hears, not something a site checks.
DAEMON_ONLY = frozenset({"heartbeat"})
STATUSES = ("up", "degraded", "down")


def assignments(loaded: Any, vantage: str) -> dict[str, Any]:
    """The probes a vantage runs, per channel, as written in the config: `${VAR}` references stay
    unresolved, so no secret crosses the wire; the agent resolves them from its own environment. `version`
    changes whenever the assignment does, so an agent can tell it must refetch."""
    import hashlib
    import json

    own = loaded.config.daemon.vantage_name
    raw_channels = (loaded.documents[""].data or {}).get("channels", {}) if "" in loaded.documents else {}
    channels: dict[str, Any] = {}
    for ch_name, ch in loaded.config.channels.items():
        if ch.health is None:
            continue
        raw_probes = ((raw_channels.get(ch_name) or {}).get("health") or {}).get("probes") or []
        mine = []
        for i, spec in enumerate(ch.health.probes):
            if spec.type in DAEMON_ONLY or not probe_runs_at(spec.vantages, vantage, own):
                continue
            raw = dict(raw_probes[i]) if i < len(raw_probes) and isinstance(raw_probes[i], dict) \
                else spec.settings_data()
            raw.pop("vantages", None)
            mine.append(raw)
        if mine:
            channels[ch_name] = {"every": ch.health.every.total_seconds(), "combine": ch.health.combine,
                                 "probes": mine}
    body = {"vantage": vantage, "channels": channels}
    body["version"] = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return body


@dataclass(frozen=True)
class Observation:
    """One cycle of one vantage's probes of one channel, as posted by an agent."""

    vantage: str
    channel: str
    status: Status
    reason: str
    results: list[dict[str, Any]]


def parse_observations(body: Any, channels: Iterable[str]) -> list[Observation]:
    """`{"vantage": NAME, "observations": [{"channel", "status", "reason", "probes": [...]}, ...]}` checked
    field by field; a ValueError names the first wrong one (the HTTP layer answers 400, nothing recorded)."""
    import re

    known = set(channels)
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object: {\"vantage\": ..., \"observations\": [...]}")
    vantage = body.get("vantage")
    if not isinstance(vantage, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", vantage):
        raise ValueError("vantage must be a name (lower-case letters, digits, - and _)")
    items = body.get("observations", [])
    if not isinstance(items, list) or len(items) > 1000:
        raise ValueError("observations must be a list (at most 1000)")
    out = []
    for i, item in enumerate(items):
        where = f"observations[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object")
        channel, status, reason = item.get("channel"), item.get("status"), item.get("reason", "")
        if channel not in known:
            raise ValueError(f"{where}.channel: unknown channel {channel!r}")
        if status not in STATUSES:
            raise ValueError(f"{where}.status must be one of {', '.join(STATUSES)}")
        if not isinstance(reason, str):
            raise ValueError(f"{where}.reason must be text")
        probes = item.get("probes", [])
        if not isinstance(probes, list) or not all(isinstance(p, dict) for p in probes):
            raise ValueError(f"{where}.probes must be a list of objects")
        results = [{"probe": str(p.get("probe", ""))[:64], "status": p.get("status") if p.get("status") in STATUSES
                    else "down", "latency_ms": p.get("latency_ms") if isinstance(p.get("latency_ms"), int | float)
                    else None, "reason": str(p.get("reason", ""))[:500]} for p in probes[:100]]
        out.append(Observation(vantage, str(channel), status, reason[:1000], results))
    return out


def watched_from_elsewhere(loaded: Any) -> bool:
    """True when some channel is seen from other vantages or by heartbeats: only the daemon knows those."""
    own = loaded.config.daemon.vantage_name
    return any(ch.health is not None and (needs_quorum(ch.health, own) or any(p.type == "heartbeat"
                                                                               for p in ch.health.probes))
               for ch in loaded.config.channels.values())


def daemon_views(loaded: Any, timeout: float = 1.0) -> dict[str, Any]:
    """What each vantage sees, as the running daemon holds it (in memory only), for `status` and `check`:
    asked over its /healthz with the API token. An `error` says why it is not there."""
    import json
    import os
    import urllib.error
    import urllib.request

    cfg = loaded.config.daemon
    token = os.environ.get(cfg.token_env)
    if not token:
        return {"error": f"set {cfg.token_env} to see what each vantage sees (the daemon holds it)"}
    host, _, port = cfg.bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a wildcard bind is reached on loopback)
        host = "127.0.0.1"
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/healthz"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (our own daemon's URL)
            body = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            body = json.loads(err.read() or b"{}") if err.code == 503 else {}
        if not body:
            return {"error": f"the daemon at {cfg.bind} answered HTTP {err.code}"}
    except (OSError, ValueError):
        return {"error": f"the daemon at {cfg.bind} is not reachable"}
    if "quorum" not in body:
        return {"error": "the daemon did not share its views (wrong token?)"}
    return {"vantage": body.get("vantage"), "heard": body.get("heard", {}), "channels": body.get("quorum", {})}


def probe_vantages(loaded: Any, channel: str) -> list[list[str]]:
    """Per probe of a channel's health, in order: the vantages it runs at."""
    health = loaded.config.channels[channel].health
    own = loaded.config.daemon.vantage_name
    return [list(spec.vantages or [own]) for spec in (health.probes if health else [])]
