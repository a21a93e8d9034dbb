"""The daemon's real aiohttp app on a loopback port, reading the same SQLite store as an in-process engine.

The app runs in a thread with its own event loop (as in the daemon, one loop serves every request); the
test drives situations through the engine and reads the pages over real HTTP with urllib.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from continuity.config.loader import load_config
from continuity.daemon.service import Daemon
from continuity.engine import Engine
from continuity.store import open_store
from tests.conftest import Configure, MakeEngine, tick
from tests.crashkit import free_port

# A shop page's origin allowed to read /banner.json in the CORS tests.
SHOP_ORIGIN = "https://shop.example.test"
# Text a customer must never see as markup: a script, an image with a handler, both kinds of quotes.
EVIL = "<script>alert(1)</script><img src=x onerror=\"alert('x')\"> & \"quoted\""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Site:
    url: str
    daemon: Daemon
    engine: Engine

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def run(self, advance: timedelta = timedelta(0)) -> None:
        """Move the shared clock and run whatever steps are due (as `continuity tick` would)."""
        self.engine.clock.advance(advance)  # type: ignore[attr-defined]
        tick(self.engine)


MakeSite = Callable[..., Site]


def public_config(cfg: dict[str, Any]) -> None:
    """The shipped example, with the banner shown at once instead of after 30 minutes."""
    cfg["channels"]["phone"]["override"] = {"website-banner": {"after": "0s"}}


@pytest.fixture
def site(configure: Configure, engine: MakeEngine) -> Iterator[MakeSite]:
    """`site(edit)` applies `edit` to the config (after `public_config`), then serves the daemon's app."""
    started: list[tuple[asyncio.AbstractEventLoop, threading.Thread, Any, Daemon]] = []

    def make(edit: Callable[[dict[str, Any]], None] | None = None) -> Site:
        def change(cfg: dict[str, Any]) -> None:
            public_config(cfg)
            if edit is not None:
                edit(cfg)

        path = configure(change)
        eng = engine()
        loaded = load_config(path)
        port = free_port()
        daemon = Daemon(loaded, open_store(loaded.store_url, loaded.base_dir), eng.clock,
                        logging.getLogger("test.public"), bind=f"127.0.0.1:{port}")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        from continuity.daemon.http import serve

        runner = asyncio.run_coroutine_threadsafe(serve(daemon), loop).result(10)
        started.append((loop, thread, runner, daemon))
        return Site(f"http://127.0.0.1:{port}", daemon, eng)

    yield make
    for loop, thread, runner, daemon in started:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        daemon.store.close()
