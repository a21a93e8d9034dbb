"""Prometheus metrics of the daemon, in a registry of its own (nothing global, tests can build several)."""

from __future__ import annotations

from typing import Any

from continuity.probes.health import ChannelHealth

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

    def observe_check(self, channel: str, results: list[Any], health: ChannelHealth) -> None:
        self.cycles.labels(channel).inc()
        for r in results:
            self.probe_latency.labels(channel, r.probe).observe(r.latency)
            self.probe_up.labels(channel, r.probe).set(0 if r.status == "down" else 1)
        current = "degraded" if health.state == "up" and health.degraded else health.state
        for state in STATES:
            self.channel_state.labels(channel, state).set(1 if state == current else 0)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        data: bytes = generate_latest(self.registry)
        return data
