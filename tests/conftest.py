"""Shared fixtures: a working folder with the shipped config, the real CLI as a subprocess, an in-process
engine on a manual clock, and a real loopback HTTP server for webhook sinks.

Nothing here replaces code under test: the CLI runs as `python -m continuity`, the engine uses the real
config loader, SQLite store and sinks, and webhooks talk to a socket on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

import continuity.campaigns  # noqa: F401 (registers the `campaign` template variable, as the CLI does)
from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.engine import Engine
from continuity.store import open_store

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "playbooks.example.yaml"
CONFIG_NAME = "continuity.yaml"
STORE_NAME = "continuity.db"

# A Monday morning in Budapest (UTC+1): every pinned clock in the suite starts here.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

# Variables of the developer's shell that would change what the CLI does under test.
_SCRUBBED_ENV = ("CONTINUITY_CONFIG", "CONTINUITY_NOW", "CONTINUITY_USER", "SMTP_PASSWORD")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding a copy of the shipped example config as continuity.yaml (nothing else yet)."""
    shutil.copyfile(EXAMPLE_CONFIG, tmp_path / CONFIG_NAME)
    return tmp_path


@pytest.fixture
def config_path(workdir: Path) -> Path:
    return workdir / CONFIG_NAME


Configure = Callable[[Callable[[dict[str, Any]], None]], Path]


@pytest.fixture
def configure(config_path: Path) -> Configure:
    """Rewrite continuity.yaml: `configure(lambda cfg: cfg["retry"].update(attempts=2))`.

    The change function gets the parsed shipped config and edits it in place; comments are not kept.
    """

    def change(edit: Callable[[dict[str, Any]], None]) -> Path:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        edit(data)
        config_path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
        return config_path

    return change


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


def run_cli(workdir: Path, *args: str, config: Path | str | None = None, now: datetime | str | None = None,
            env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m continuity --config CONFIG ARGS…` in workdir as user `tester`.

    `config` replaces the --config path (None: workdir/continuity.yaml), `now` pins CONTINUITY_NOW
    (a datetime or ISO text), `env` adds variables. Returns the CompletedProcess with text stdout/stderr.
    """
    full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    # A wide terminal, so rich does not fold the paths and names the tests look for.
    full_env.update({"CONTINUITY_USER": "tester", "COLUMNS": "250", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"})
    if now is not None:
        full_env["CONTINUITY_NOW"] = now.isoformat() if isinstance(now, datetime) else now
    full_env.update(env or {})
    cfg = str(config if config is not None else workdir / CONFIG_NAME)
    return subprocess.run(
        [sys.executable, "-m", "continuity", "--config", cfg, *args],
        cwd=workdir, env=full_env, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
    )


@pytest.fixture
def cli(workdir: Path) -> RunCli:
    """The real CLI in a subprocess, in workdir: `cli("outage", "phone", "--reason", "x", now=NOW)`."""

    def run(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return run_cli(workdir, *args, **options)

    return run


MakeEngine = Callable[..., Engine]


def build_engine(path: Path, *, start: datetime = NOW, environ: dict[str, str] | None = None) -> Engine:
    """An Engine on the config at path, its store, and a ManualClock at start (close eng.store when done)."""
    loaded = load_config(path, environ=environ)
    return Engine(loaded, open_store(loaded.store_url, loaded.base_dir), ManualClock(start))


@pytest.fixture
def engine(config_path: Path) -> Iterator[MakeEngine]:
    """Build in-process Engines on a ManualClock: `eng = engine()`, then `eng.clock.advance(...)`.

    `engine(path, start=...)` loads another config or starts the clock elsewhere; the store is the one the
    config names (by default workdir/continuity.db). Stores are closed at teardown.
    """
    made: list[Engine] = []

    def make(path: Path | None = None, *, start: datetime = NOW, environ: dict[str, str] | None = None) -> Engine:
        eng = build_engine(path or config_path, start=start, environ=environ)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.store.close()


def store_snapshot(workdir: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file of the SQLite store (the database, its WAL and shared memory)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(workdir.glob(STORE_NAME + "*"))}


def tree(directory: Path) -> list[str]:
    """Every file under directory, relative, sorted ([] when it does not exist)."""
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


# A real HTTP server on 127.0.0.1 ------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    """A loopback server answering POSTs with scripted status codes, recording every request.

    `statuses` is consumed one per request; when it runs out, `then` answers every further request.
    """

    url: str
    statuses: list[int] = field(default_factory=list)
    then: int = 200
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hang: float = 0.0  # seconds to hold every request before answering (a receiver that hangs)
    stopping: threading.Event = field(default_factory=threading.Event)

    def script(self, *statuses: int, then: int = 200) -> None:
        with self.lock:
            self.statuses = list(statuses)
            self.then = then

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else self.then


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    state: HttpServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if state.hang and state.stopping.wait(state.hang):
                return
            status = state.next_status()
            with state.lock:
                state.requests.append(ReceivedRequest(self.path, dict(self.headers), body))
            payload = b'{"ok": true}' if status < 300 else b'{"error": "scripted"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = HttpServer(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def tick(eng: Engine) -> list[Any]:
    """What `continuity tick` does in-process: windows and campaigns move along the clock, then due steps run."""
    from continuity import triggers

    triggers.advance(eng)
    return eng.run_due()
