"""The daemon runs a campaign's phases: a date job waits for the briefing moment, and its step runs move
the campaign along the clock like `tick` does."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from continuity.campaigns import phases
from continuity.campaigns.store import latest_run
from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.store import open_store
from continuity.store.sqlite import ts
from tests.campaigns.kit import sent, write
from tests.conftest import NOW


def test_the_daemon_schedules_and_runs_the_phases(config_path: Path, workdir: Path) -> None:
    loaded = load_config(config_path)
    store = open_store(loaded.store_url, loaded.base_dir)
    clock = ManualClock(NOW)

    async def scenario() -> tuple[set[str], str]:
        daemon = Daemon(loaded, store, clock, logging.getLogger("continuity.test"))
        try:
            await daemon.start()
            run = phases.register(daemon.engine, write(workdir), by="marketing").run
            await daemon.resync()
            jobs = set(daemon._step_jobs)
            clock.set(run.opens_at)
            await daemon.run_steps()
            clock.set(run.starts_at + timedelta(seconds=1))
            await daemon.run_steps()
            return jobs, f"campaign-{ts(run.opens_at)}"
        finally:
            await daemon.stop()

    try:
        jobs, expected = asyncio.run(scenario())
        assert expected in jobs  # a date job at the briefing moment
        assert sent(workdir)[("brief", "apply")] == 1 and sent(workdir)[("launch-status", "apply")] == 1
        assert latest_run(store, "winter-sale").state == "live"  # type: ignore[union-attr]
    finally:
        store.close()
