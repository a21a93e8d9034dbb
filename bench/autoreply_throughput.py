"""Auto-responder throughput: a backlog of N customer messages (default 5,000) answered through aiosmtpd over
the responder's pool of reused SMTP connections, against the naive way (a new SMTP connection per message,
one after another), in the same run, against a real Dovecot.

aiosmtpd runs in a process of its own (its Sink handler: accept and drop), as a real mail server would, so it
does not compete with the responder for one interpreter. Both runs go through the whole responder: IMAP
search and fetch, parsing, the loop-safety rules, language choice, the store (a row per message before and
after sending) and rendering. Only the SMTP side differs.
The backlog is written straight into the Maildirs (TEST-PEERS.md), so delivery does not count.

    python bench/autoreply_throughput.py [N] [--pooled-only]

Besides the throughput it prints the responder's CPU seconds per answer in the pooled run (the whole process:
the event loop, the IMAP and store threads; aiosmtpd and Dovecot are other processes) over the CPU seconds of a
bare `email.message_from_bytes` of the same messages in the same run. `--pooled-only` skips the naive run, for
the CPU per answer of a large backlog (20,000) without waiting for 20,000 new connections.
"""

from __future__ import annotations

import asyncio
import email
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from continuity.autoreply.language import warm_up  # noqa: E402
from continuity.autoreply.responder import Responder  # noqa: E402
from continuity.autoreply.smtppool import Lease, SmtpPool  # noqa: E402
from continuity.clock import SystemClock  # noqa: E402
from continuity.config.loader import load_config  # noqa: E402
from continuity.engine import Engine  # noqa: E402
from continuity.sinks.autoreply import AutoreplySettings  # noqa: E402
from continuity.store.sqlite import SqliteStore  # noqa: E402
from tests.autoreply.respkit import maildir_drop  # noqa: E402
from tests.probes.mailpeers import DovecotServer, MailUser, free_port, mail_message  # noqa: E402

TEXTS = [
    "Hello, where is my parcel? I ordered it last week.\n",
    "Jó napot! Mikor érkezik meg a múlt héten leadott rendelésem?\n",
    "Dobrý deň, kedy dorazí moja objednávka z minulého týždňa?\n",
    "Dzień dobry, kiedy dotrze moje zamówienie z zeszłego tygodnia?\n",
]


class NaivePool(SmtpPool):
    """The naive way: a new connection (connect, EHLO, QUIT) for every single answer."""

    @asynccontextmanager
    async def lease(self) -> Any:
        from continuity.net.smtp import close_smtp

        async with self._sem:
            smtp = await self.connect()
            lease = Lease(self, smtp, reused=False)
            try:
                yield lease
            finally:
                await close_smtp(lease.smtp)


def start_smtp() -> tuple[subprocess.Popen[bytes], int]:
    """aiosmtpd in its own process, accepting and dropping every message."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("aiosmtpd did not start")


def configure(workdir: Path, dovecot: DovecotServer, smtp_port: int, users: dict[str, str]) -> Path:
    cfg = yaml.safe_load((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
    cfg["sinks"].update({
        name: {"type": "autoreply", "address": address, "imap_host": dovecot.host, "imap_port": dovecot.imap_port,
               "imap_security": "none", "imap_password": "${BENCH_PW}", "smtp_host": "127.0.0.1",
               "smtp_port": smtp_port, "smtp_security": "none", "poll_interval": "1s"}
        for name, address in users.items()})
    cfg["routes"]["autoreply"] = list(users)
    path = workdir / "continuity.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def bare_parse_cpu(messages: list[bytes], rounds: int = 3) -> float:
    """CPU seconds per message of a bare `email.message_from_bytes`, the least of a few rounds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for raw in messages:
            email.message_from_bytes(raw)
        best = min(best, (time.process_time() - started) / len(messages))
    return best


async def answer(responder: Responder, n: int) -> float:
    started = time.perf_counter()
    task = asyncio.ensure_future(responder.run())
    try:
        while responder.counts["sent"] < n:
            if task.done():
                task.result()
                raise RuntimeError(f"the responder stopped early: {dict(responder.counts)}")
            await asyncio.sleep(0.01)
        return time.perf_counter() - started
    finally:
        responder.stop()
        await task


def start_dovecot(users: dict[str, str]) -> DovecotServer:
    """Dovecot's master writes its pid file a moment after it returns: on a loaded machine, try again."""
    for attempt in range(3):
        try:
            return DovecotServer(users).start()
        except (OSError, ValueError, RuntimeError):
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    pooled_only = "--pooled-only" in sys.argv[1:]
    n = int(args[0]) if args else 5000
    logging.getLogger("continuity").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="continuity-bench-"))
    users = {"pooled": "pooled@example.test", "naive": "naive@example.test"}
    dovecot = start_dovecot({address: "bench-secret" for address in users.values()})
    smtp, smtp_port = start_smtp()
    try:
        config = configure(workdir, dovecot, smtp_port, users)
        loaded = load_config(config, environ={"BENCH_PW": "bench-secret"})
        store = SqliteStore(workdir / "continuity.db")
        clock = SystemClock()
        engine = Engine(loaded, store, clock)
        engine.open("phone", reason="SIP trunk down at the provider", eta=timedelta(hours=2), by="bench")
        assert all(r.state == "done" for r in engine.run_due())
        time.sleep(1.1)  # the backlog arrives in a later second than the opening
        backlogs: dict[str, list[bytes]] = {}
        for address in users.values():
            user = MailUser(address, "bench-secret")
            backlogs[address] = [mail_message(f"Order {i}", TEXTS[i % 4], sender=f"c{i}@example.test", to=address)
                                 for i in range(n)]
            maildir_drop(dovecot, user, backlogs[address])
        warm_up()  # the language model loads once, before either run is timed
        results: dict[str, tuple[float, int]] = {}
        cpu: dict[str, float] = {}
        for name in ("pooled",) if pooled_only else ("pooled", "naive"):
            settings = loaded.sinks[name].settings
            assert isinstance(settings, AutoreplySettings)
            responder = Responder(name, settings, loaded, store, clock)
            if name == "naive":
                responder.pool = NaivePool(settings, 1)
            cpu_started = time.process_time()
            seconds = asyncio.run(answer(responder, n))
            cpu[name] = time.process_time() - cpu_started
            sent = len(store.autoreply_messages(name, "sent"))
            assert sent == n, (sent, n)
            results[name] = (seconds, responder.pool.connections_opened)
        bare = bare_parse_cpu(backlogs[users["pooled"]])
        store.close()
    finally:
        smtp.terminate()
        smtp.wait(10)
        dovecot.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    pooled = results["pooled"]
    print(f"backlog: {n} messages, answered through aiosmtpd (own process) on loopback, {datetime.now(UTC):%Y-%m-%d}")
    print(f"{'way':<34}{'seconds':>9}{'answers/s':>11}{'SMTP connections':>18}")
    print(f"{'pooled (4 reused connections)':<34}{pooled[0]:>9.2f}{n / pooled[0]:>11.0f}{pooled[1]:>18}")
    if "naive" in results:
        naive = results["naive"]
        print(f"{'naive (new connection per answer)':<34}{naive[0]:>9.2f}{n / naive[0]:>11.0f}{naive[1]:>18}")
        print(f"ratio (pooled / naive answers per second): {naive[0] / pooled[0]:.1f}x")
    per_answer = cpu["pooled"] / n
    print(f"responder cpu per answer (pooled): {per_answer * 1e6:.0f} µs; bare email.message_from_bytes: "
          f"{bare * 1e6:.1f} µs per message")
    print(f"cpu per answer / bare parse: {per_answer / bare:.1f}x")


if __name__ == "__main__":
    main()
