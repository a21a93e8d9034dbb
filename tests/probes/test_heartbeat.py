"""The heartbeat probe as a table (heard when → status), and the daemon hearing plain pings: a device that
cannot run the agent posts /api/heartbeat/NAME, and its silence opens the outage."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuity.clock import Clock
from continuity.probes.base import ProbeContext
from continuity.probes.heartbeat import Heard, HeartbeatProbe, HeartbeatSettings
from tests.agent import conftest as agentpeers
from tests.agent.conftest import TOKEN, Site
from tests.crashkit import wait_for

site = agentpeers.site  # the daemon-and-peer fixture, bound to a module name (pytest finds it by that)

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


class Fixed(Clock):
    def now(self) -> datetime:
        return NOW


@pytest.mark.parametrize(("heard_ago", "started_ago", "status", "reason"), [
    (5, 600, "up", ""),
    (89, 600, "up", ""),
    (90, 600, "down", "vantage office silent: nothing heard for 1m"),
    (None, 60, "up", ""),  # a fresh start counts as heard: a restart alone opens nothing
    (None, 600, "down", "vantage office silent: nothing heard for 10m (not once since the daemon started)"),
])
def test_silence_against_max_silence(heard_ago: int | None, started_ago: int, status: str, reason: str,
                                     tmp_path: Path) -> None:
    heard = Heard(NOW - timedelta(seconds=started_ago))
    heard.hear("branch", NOW)  # others heard say nothing of this one
    if heard_ago is not None:
        heard.hear("office", NOW - timedelta(seconds=heard_ago))
    probe = HeartbeatProbe(HeartbeatSettings(type="heartbeat", vantage="office", max_silence="90s"),
                           ProbeContext(tmp_path, Fixed()), heard=heard)
    result = asyncio.run(probe.check())
    assert (result.status, result.reason) == (status, reason)


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError):
        HeartbeatSettings(type="heartbeat", vantage="Office")
    with pytest.raises(ValueError):
        HeartbeatSettings(type="heartbeat")  # type: ignore[call-arg]


def test_a_device_pinging_keeps_the_channel_up_and_its_silence_opens_the_outage(site: Site) -> None:
    site.start_daemon()

    def ping() -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{site.http_port}/api/heartbeat/office", data=b"",
                                     method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=2) as r:
            assert json.loads(r.read()) == {"ok": True, "vantage": "office"}
            return r.status

    # The router pings every second for a while: no internet outage, though no agent ever ran.
    for _ in range(8):
        assert ping() == 200
        time.sleep(1)
    assert "internet" not in site.open_outages()
    wait_for(lambda: "internet" in site.open_outages(), 12, "the internet outage once the pings stop")
    ping()
    wait_for(lambda: "internet" not in site.open_outages(), 8, "the outage to close on the next ping")
