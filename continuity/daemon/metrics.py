"""Prometheus metrics of the daemon, in a registry of its own (nothing global, tests can build several)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuity.probes.health import ChannelHealth

if TYPE_CHECKING:
    from datetime import datetime

    from continuity.probes.surge import SurgeCheck
    from continuity.quorum import Quorum

STATES = ("up", "failing", "down", "recovering", "flapping", "degraded")


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.probe_latency = Histogram(
            "continuity_probe_latency_seconds", "Latency of each probe check", ["channel", "probe"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30), registry=self.registry)
        self.probe_up = Gauge("continuity_probe_up", "1 when the probe's last check passed (up or degraded)",
                              ["channel", "probe"], registry=self.registry)
        self.channel_state = Gauge("continuity_channel_state", "1 for the channel's current health state",
                                   ["channel", "state"], registry=self.registry)
        self.situations_open = Gauge("continuity_situations_open", "Open situations", ["kind"],
                                     registry=self.registry)
        self.steps = Counter("continuity_steps", "Ledger steps run by this daemon, by outcome", ["outcome"],
                             registry=self.registry)
        self.cycles = Counter("continuity_probe_cycles", "Probe cycles run", ["channel"], registry=self.registry)
        # Surge watches: the raw numbers, so a dashboard shows the queue building before the daemon reacts.
        self.volume = Gauge("continuity_volume", "Last volume reading of a surge probe (unseen mail, open tickets)",
                            ["channel", "probe"], registry=self.registry)
        self.volume_threshold = Gauge("continuity_volume_threshold", "The threshold a surge probe is read against",
                                      ["channel", "probe"], registry=self.registry)
        self.volume_unreadable = Counter("continuity_volume_unreadable", "Surge probe readings that failed",
                                         ["channel", "probe"], registry=self.registry)
        # What each vantage sees of a channel seen from several places (the quorum's inputs).
        self.vantage_up = Gauge("continuity_vantage_probe_up", "1 when the probe last passed at that vantage",
                                ["channel", "probe", "vantage"], registry=self.registry)
        self.vantage_down = Gauge("continuity_vantage_sees_down", "1 while the vantage counts the channel down "
                                  "(after its own fail_after)", ["channel", "vantage"], registry=self.registry)
        self.vantage_silent = Gauge("continuity_vantage_silent", "1 while nothing comes from the vantage",
                                    ["channel", "vantage"], registry=self.registry)
        self.surging = Gauge("continuity_surging", "1 from the readings that declare a surge to those that end it",
                             ["channel"], registry=self.registry)
        # A cluster on PostgreSQL: 1 while this node leads; the nodes heard from lately (1 on SQLite).
        self.cluster_leader = Gauge("continuity_cluster_leader", "1 while this node leads its cluster",
                                    ["node"], registry=self.registry)
        self.cluster_nodes = Gauge("continuity_cluster_nodes", "Nodes of the cluster heard from lately",
                                   registry=self.registry)

    def observe_cluster(self, node: str, leading: bool, nodes: int = 1) -> None:
        self.cluster_leader.labels(node).set(1 if leading else 0)
        self.cluster_nodes.set(nodes)

    def observe_check(self, channel: str, results: list[Any], health: ChannelHealth) -> None:
        self.cycles.labels(channel).inc()
        for r in results:
            self.probe_latency.labels(channel, r.probe).observe(r.latency)
            self.probe_up.labels(channel, r.probe).set(0 if r.status == "down" else 1)
        current = "degraded" if health.state == "up" and health.degraded else health.state
        for state in STATES:
            self.channel_state.labels(channel, state).set(1 if state == current else 0)

    def observe_vantages(self, channel: str, quorum: Quorum, now: datetime, only: str | None = None) -> None:
        """Every vantage's view of the channel (or only the one that just reported: an agent's post)."""
        for name, view in quorum.views.items():
            if only is not None and name != only:
                continue
            self.vantage_down.labels(channel, name).set(1 if view.health.is_down else 0)
            self.vantage_silent.labels(channel, name).set(1 if quorum.is_silent(view, now) else 0)
            for r in view.results:
                up = 0 if r.get("status") == "down" else 1
                self.vantage_up.labels(channel, str(r.get("probe", "")), name).set(up)

    def observe_surge(self, check: SurgeCheck) -> None:
        for r in check.readings:
            self.volume.labels(check.channel, r.probe).set(r.value)
            self.volume_threshold.labels(check.channel, r.probe).set(r.threshold)
        for probe, _reason in check.failures:
            self.volume_unreadable.labels(check.channel, probe).inc()
        self.surging.labels(check.channel).set(1 if check.state in ("surging", "easing") else 0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        data: bytes = generate_latest(self.registry)
        return data
