"""The health state machine, driven directly: hysteresis, flapping, degraded, and aggregation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from continuity.config.models import Health
from continuity.probes.base import ProbeResult
from continuity.probes.health import TABLE, ChannelHealth, aggregate

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def machine(**spec: object) -> ChannelHealth:
    return ChannelHealth(Health.model_validate({"probes": [{"type": "tcp"}], **spec}))


def feed(h: ChannelHealth, seq: str, step: timedelta = timedelta(seconds=30)) -> list[tuple[str, list[str]]]:
    """u = up, g = degraded, d = down; returns (state, events) after each observation."""
    out = []
    for i, c in enumerate(seq):
        status = {"u": "up", "g": "degraded", "d": "down"}[c]
        events = h.observe(status, "because", T0 + i * step)  # type: ignore[arg-type]
        out.append((h.state, list(events)))
    return out


def test_every_state_and_observation_has_a_move() -> None:
    states = {s for s, _ in TABLE} | set(TABLE.values())
    assert {(s, p) for s in states for p in (True, False)} == set(TABLE)


@pytest.mark.parametrize(("seq", "fail_after", "recover_after", "states", "events_at"), [
    # goes down only after fail_after failures in a row
    ("ddd", 3, 2, ["failing", "failing", "down"], {2: ["went_down"]}),
    ("ddud", 3, 2, ["failing", "failing", "up", "failing"], {}),
    # and comes back only after recover_after passes in a row
    ("dddudu", 3, 2, ["failing", "failing", "down", "recovering", "down", "recovering"], {2: ["went_down"]}),
    ("ddduu", 3, 2, ["failing", "failing", "down", "recovering", "up"], {2: ["went_down"], 4: ["recovered"]}),
    ("du", 1, 1, ["down", "up"], {0: ["went_down"], 1: ["recovered"]}),
    # degraded is a pass for the hysteresis
    ("dddgg", 3, 2, ["failing", "failing", "down", "recovering", "up"], {2: ["went_down"], 4: ["recovered"]}),
])
def test_hysteresis(seq: str, fail_after: int, recover_after: int, states: list[str],
                    events_at: dict[int, list[str]]) -> None:
    h = machine(fail_after=fail_after, recover_after=recover_after, flapping={"changes": 10, "window": "1h"})
    got = feed(h, seq)
    assert [s for s, _ in got] == states
    assert {i: ev for i, (_, ev) in enumerate(got) if ev} == events_at


def test_degraded_is_reported_on_its_own() -> None:
    h = machine()
    got = feed(h, "ugguu")
    assert [ev for _, ev in got] == [[], ["degraded"], [], ["degraded_cleared"], []]
    assert all(s == "up" for s, _ in got)


def test_a_flapping_channel_is_held_down_until_stable_for_a_window() -> None:
    h = machine(fail_after=1, recover_after=1, flapping={"changes": 3, "window": "10m"})
    got = feed(h, "dud", step=timedelta(minutes=1))
    assert got == [("down", ["went_down"]), ("up", ["recovered"]), ("flapping", ["went_down", "flapping"])]
    assert h.is_down
    # passing, then failing again inside the window restarts the wait
    later = [h.observe(s, "", T0 + timedelta(minutes=3 + i)) for i, s in enumerate(["up"] * 5 + ["down"])]
    assert all(ev == [] for ev in later) and h.state == "flapping"
    # a whole window of passes releases it
    events = [h.observe("up", "", T0 + timedelta(minutes=9 + i)) for i in range(11)]
    assert events[-1] == ["recovered"] and h.state == "up"
    assert all(ev == [] for ev in events[:-1])


def test_changes_outside_the_window_do_not_count_as_flapping() -> None:
    h = machine(fail_after=1, recover_after=1, flapping={"changes": 3, "window": "10m"})
    got = feed(h, "dudud", step=timedelta(minutes=6))
    assert "flapping" not in {s for s, _ in got}


@pytest.mark.parametrize(("statuses", "combine", "expected"), [
    (["up", "up"], "all", "up"),
    (["up", "degraded"], "all", "degraded"),
    (["up", "down"], "all", "down"),
    (["up", "down"], "any", "up"),
    (["degraded", "down"], "any", "degraded"),
    (["down", "down"], "any", "down"),
])
def test_aggregate(statuses: list[str], combine: str, expected: str) -> None:
    results = [ProbeResult(s, 0.01, f"reason {i}" if s != "up" else "", f"p{i}")  # type: ignore[arg-type]
               for i, s in enumerate(statuses)]
    status, reason = aggregate(results, combine)
    assert status == expected
    for i, s in enumerate(statuses):
        assert (f"p{i}: reason {i}" in reason) == (s != "up")
