"""A probe cycle that overruns its interval (a peer that accepts and never answers, timeout = every) must not
lose the next tick: the next cycle runs right after it, so a hang is detected at every x fail_after + timeout."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from continuity.clock import SystemClock
from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.store import open_store
from tests.conftest import Configure


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A listening socket that never accepts: connections complete in the kernel, requests get no answer."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _hanging_email(port: int) -> Any:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["channels"]["email"]["health"] = {
            "every": "1s", "fail_after": 2,
            "probes": [{"type": "http", "url": f"http://127.0.0.1:{port}/health", "timeout": "1s"}],
        }

    return edit


def test_a_tick_during_an_overrunning_cycle_runs_right_after_it(configure: Configure, silent_peer: int) -> None:
    path: Path = configure(_hanging_email(silent_peer))
    loaded = load_config(path)
    store = open_store(loaded.store_url, loaded.base_dir)

    async def scenario() -> tuple[float, float, Daemon]:
        daemon = Daemon(loaded, store, SystemClock(), logging.getLogger("continuity.test"))
        try:
            started = time.perf_counter()
            first = asyncio.create_task(daemon.probe_job("email"))
            await asyncio.sleep(0.3)
            t = time.perf_counter()
            await daemon.probe_job("email")  # the tick while the first cycle hangs: noted, not run alongside
            noted = time.perf_counter() - t
            await first
            return noted, time.perf_counter() - started, daemon
        finally:
            await daemon.probes.aclose()

    try:
        noted, total, daemon = asyncio.run(scenario())
    finally:
        store.close()
    assert noted < 0.2
    # Two hanging cycles back to back (about 2 s): the second tick was not skipped, and two failures in a row
    # took the channel down and opened its outage.
    assert 1.9 <= total < 3.5
    assert 'continuity_probe_cycles_total{channel="email"} 2.0' in daemon.metrics.render().decode()
    assert daemon.health["email"].state == "down"
    assert "timed out after 1s" in daemon.health["email"].last_reason
    assert store_situations(path) == [("email", "daemon")]


def store_situations(config: Path) -> list[tuple[str, str]]:
    import sqlite3

    conn = sqlite3.connect(config.parent / "continuity.db")
    try:
        return [(str(c), str(s)) for c, s in conn.execute("SELECT channel, source FROM situations")]
    finally:
        conn.close()


def test_warm_up_compiles_every_playbook_template_before_the_first_outage(config_path: Path) -> None:
    loaded = load_config(config_path)
    store = open_store(loaded.store_url, loaded.base_dir)
    try:
        daemon = Daemon(loaded, store, SystemClock(), logging.getLogger("continuity.test"))
        compiled = daemon.warm_up()
        catalog = daemon.engine.catalog
        banner = catalog.find("outage/banner", "hu")
        assert banner is not None
        assert catalog.env.cache is not None
        # Every template of every channel's playbook, in every locale of its audience, is compiled already.
        # (The environment is shared per process: templates other tests compiled may be there too.)
        assert 20 <= compiled <= len(catalog.env.cache)
        assert any(key[1] == banner for key in catalog.env.cache)
    finally:
        store.close()


def test_the_daemon_lifts_its_open_files_limit() -> None:
    """A thousand http probes keep a thousand connections open: the soft limit is raised to the hard one."""
    import resource
    import subprocess
    import sys

    code = ("import resource; from continuity.daemon.service import raise_file_limit; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
            "print(raise_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = hard if hard != resource.RLIM_INFINITY else 65536
    assert out == [str(expected), str(expected)]
