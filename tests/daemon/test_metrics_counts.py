"""The daemon's /metrics counts what it did: `continuity_situations_open{kind}` follows the ledger's open
situations, and `continuity_steps_total{outcome}` counts every step it ran as done or failed, plus those that
ran late. An in-process Daemon on a manual clock, its real engine and SQLite store, the shipped outbox, and a
webhook sink pointed at a port nothing listens on (every call refused)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.store import open_store
from tests.conftest import NOW, Configure
from tests.probes.conftest import free_port

KINDS = ("outage", "surge", "maintenance", "degraded")


@pytest.fixture
def daemon(configure: Configure) -> Iterator[Daemon]:
    refused = f"http://127.0.0.1:{free_port()}/hook"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["sinks"]["team_hook"] = {"type": "webhook", "url": refused, "timeout": 2}
        cfg["routes"]["staff"] = ["outbox", "team_hook"]
        # Two tries: the first failure is retried 2s later, the second is final.
        cfg["retry"].update(attempts=2, first_delay="2s")

    loaded = load_config(configure(edit))
    store = open_store(loaded.store_url, loaded.base_dir)
    d = Daemon(loaded, store, ManualClock(NOW), logging.getLogger("test-daemon-metrics"))
    yield d
    asyncio.run(d.probes.aclose())
    store.close()


def samples(d: Daemon) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the rendered exposition, keyed by name and labels (parsed, not string-matched)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(d.metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def steps_total(d: Daemon) -> dict[str, float]:
    return {dict(labels)["outcome"]: value for (name, labels), value in samples(d).items()
            if name == "continuity_steps_total"}


def situations_open(d: Daemon) -> dict[str, float]:
    return {dict(labels)["kind"]: value for (name, labels), value in samples(d).items()
            if name == "continuity_situations_open"}


def run_steps(d: Daemon) -> list[tuple[str, str, str]]:
    results = asyncio.run(d.run_steps())
    return sorted((r.row.step_id, r.row.sink, r.state) for r in results)


def advance(d: Daemon, delta: timedelta) -> None:
    assert isinstance(d.clock, ManualClock)
    d.clock.advance(delta)


def test_steps_and_open_situations_are_counted_exactly(daemon: Daemon) -> None:
    # Nothing has run yet: no outcome has a sample, the gauge has none either.
    assert steps_total(daemon) == {}
    assert situations_open(daemon) == {}

    daemon.engine.open("phone", reason="SIP trunk down", eta=timedelta(hours=2), by="tester")
    ran = run_steps(daemon)
    assert ran == [("customer-notice", "outbox", "done"), ("email-autoreply", "outbox", "done"),
                   ("staff-runbook", "outbox", "done"), ("staff-runbook", "team_hook", "failed")]
    assert steps_total(daemon) == {"done": 3.0, "failed": 1.0}
    assert situations_open(daemon) == {"outage": 1.0, "surge": 0.0, "maintenance": 0.0, "degraded": 0.0,
                                       "monitoring": 0.0}

    # A second situation of the same kind counts twice.
    daemon.engine.open("email", reason="mail server down", by="tester")
    ran = run_steps(daemon)
    assert [r for r in ran if r[2] != "done"] == [("staff-runbook", "team_hook", "failed")]
    assert ran == [("customer-notice", "outbox", "done"), ("staff-runbook", "outbox", "done"),
                   ("staff-runbook", "team_hook", "failed")]
    assert steps_total(daemon) == {"done": 5.0, "failed": 2.0}
    assert situations_open(daemon)["outage"] == 2.0

    # 2s later both webhook retries fall due and fail for good; a retry is not late.
    advance(daemon, timedelta(seconds=2))
    assert run_steps(daemon) == [("staff-runbook", "team_hook", "failed")] * 2
    assert steps_total(daemon) == {"done": 5.0, "failed": 4.0}

    # The 30-minute steps run 3 minutes after their time (more than two minutes: late), each counted done
    # and late: phone's banner and social post, email's (outage-email) own 30-minute steps.
    advance(daemon, timedelta(minutes=33))
    assert run_steps(daemon) == [("social-post", "outbox", "done"), ("website-banner", "website", "done"),
                                 ("website-banner", "website", "done")]
    late_rows = sorted((r.situation_id, r.step_id) for r in daemon.store.steps_for(1) + daemon.store.steps_for(2)
                       if r.late)
    assert late_rows == [(1, "social-post"), (1, "website-banner"), (2, "website-banner")]
    assert steps_total(daemon) == {"done": 8.0, "failed": 4.0, "late": 3.0}

    # Closing: switch-offs and close messages are counted like any step, the gauge follows one situation at a
    # time back to 0.
    daemon.engine.close("phone", by="tester")
    assert run_steps(daemon) == [
        ("customer-notice", "outbox", "done"), ("customer-restored", "outbox", "done"),
        ("email-autoreply", "outbox", "done"), ("social-resolved", "outbox", "done"),
        ("staff-resolved", "outbox", "done"),
        ("staff-resolved", "team_hook", "failed"), ("website-banner", "website", "done")]  # switched off
    assert steps_total(daemon) == {"done": 14.0, "failed": 5.0, "late": 3.0}
    assert situations_open(daemon) == {"outage": 1.0, "surge": 0.0, "maintenance": 0.0, "degraded": 0.0,
                                       "monitoring": 0.0}

    daemon.engine.close("email", by="tester")
    assert run_steps(daemon) == [
        ("customer-notice", "outbox", "done"), ("customer-restored", "outbox", "done"),
        ("staff-resolved", "outbox", "done"), ("staff-resolved", "team_hook", "failed"),
        ("website-banner", "website", "done")]
    assert steps_total(daemon) == {"done": 18.0, "failed": 6.0, "late": 3.0}
    assert situations_open(daemon) == {"outage": 0.0, "surge": 0.0, "maintenance": 0.0, "degraded": 0.0,
                                       "monitoring": 0.0}
    assert daemon.store.open_situations() == []


def test_a_maintenance_window_counts_under_its_own_kind(daemon: Daemon) -> None:
    """The gauge is per kind: an open outage does not show as another kind, and each kind drops on its own."""
    from continuity.maintenance import add_window

    add_window(daemon.engine, "chat", start=NOW + timedelta(minutes=1), end=NOW + timedelta(hours=1),
               reason="chat widget upgrade", notice=timedelta(0), by="anna")
    daemon.engine.open("phone", reason="SIP trunk down", by="tester")
    advance(daemon, timedelta(minutes=1))
    run_steps(daemon)
    kinds = sorted(s.kind for s in daemon.store.open_situations())
    assert kinds == ["maintenance", "outage"]
    assert situations_open(daemon) == {"outage": 1.0, "surge": 0.0, "maintenance": 1.0, "degraded": 0.0,
                                       "monitoring": 0.0}
    daemon.engine.close("phone", by="tester")
    run_steps(daemon)
    assert situations_open(daemon) == {"outage": 0.0, "surge": 0.0, "maintenance": 1.0, "degraded": 0.0,
                                       "monitoring": 0.0}
    advance(daemon, timedelta(hours=1))
    run_steps(daemon)
    assert situations_open(daemon) == {"outage": 0.0, "surge": 0.0, "maintenance": 0.0, "degraded": 0.0,
                                       "monitoring": 0.0}
