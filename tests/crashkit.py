"""Real-process helpers for the crash and concurrency tests: a recording SMTP server, a config that routes
staff messages to it, and the CLI run as a subprocess that can be killed at any moment."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `cond` every `every` seconds until it gives something truthy (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps every message, optionally slowly (to widen the crash window)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.messages: list[Any] = []  # taken: the server answered 250
        self.arrived: list[str] = []  # Message-IDs whose final dot reached the server, answered or not
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        with self.lock:
            self.arrived.append(str(message_from_bytes(envelope.content)["Message-ID"]))
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


class SmtpServer:
    def __init__(self, delay: float = 0.0) -> None:
        self.port = free_port()
        self.recorder = Recorder(delay)
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def write_config(workdir: Path, smtp_port: int) -> Path:
    """The shipped example config with staff messages also sent by e-mail to the local SMTP server."""
    text = (ROOT / "playbooks.example.yaml").read_text(encoding="utf-8")
    text = text.replace("sinks:\n", f"""sinks:
  staff_mail:
    type: email
    host: 127.0.0.1
    port: {smtp_port}
    security: none
    sender: alerts@example.test
    to: [team@example.test]
    timeout: 5
""", 1)
    text = text.replace("  staff: [outbox]", "  staff: [outbox, staff_mail]")
    text = text.replace("  inline_budget: 10s", "  inline_budget: 0s")
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def cli_env(now: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CONTINUITY_NOW"] = now
    env["CONTINUITY_USER"] = "tester"
    return env


def cli_args(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "continuity", "--config", str(config), *args]


def run(config: Path, now: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_args(config, *args), cwd=config.parent, env=cli_env(now), capture_output=True,
                          text=True, timeout=60)


def run_and_kill(config: Path, now: str, after: float, *args: str) -> bool:
    """Start the CLI and SIGKILL it `after` seconds later; True if it was killed before it finished."""
    proc = subprocess.Popen(cli_args(config, *args), cwd=config.parent, env=cli_env(now),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + after
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def fresh_workdir(base: Path, name: str) -> Path:
    d = base / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d
