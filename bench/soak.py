"""Soak: a real `continuity daemon` left running for a while (default 10 minutes) with outages opening and
closing again and again, a mailbox answered by the auto-responder and the public pages polled, sampled every
10 s, so that a leak shows as growth that goes on: the second half of the run against the first half.

    python bench/soak.py [--minutes 10] [--mail-per-second 1] [--pages-per-second 5] [--seed 1]
                         [--show-every 60] [--no-mail] [--keep DIR]

- The `phone` channel has an `http` probe (every 1 s, fail_after 2, recover_after 2, flapping detection out
  of the way) against a loopback HTTP server this bench controls. It flaps: up for 20-40 s, then down for
  20-40 s (alternately refusing connections and answering 500), so the daemon opens an outage, runs its
  steps (staff runbook and customer notice to the outbox, the website banner at once, the auto-responder on)
  and closes it again, over and over.
- The `autoreply` route goes to a mailbox in a private Dovecot (needs Dovecot from Debian, like the tests);
  customer mail is delivered into it over LMTP at --mail-per-second, distinct senders, four languages. The
  responder answers what arrives while an outage is open, through aiosmtpd in a process of its own (its Sink
  handler: accept and drop); the rest is decided and skipped when the next outage opens.
- A client in this process fetches /status, /banner.json and /voice.xml in turn, --pages-per-second in all,
  a new connection each time.

Each sample: the daemon's VmRSS (/proc/PID/status), its open file descriptors (entries of /proc/PID/fd), the
store's files (continuity.db and -wal; the WAL file keeps its largest size, about 4 MB, and the db grows
only at checkpoints) and the bytes of the pages the store holds as a reader sees them (page_count x
page_size, WAL frames included: "used"), the situations and answers recorded so far. The table shows one
sample a minute (--show-every); the growth figures use all of them: RSS and fds per minute by a
least-squares line through each half, used store bytes per situation and per answer in each half. Figures
only: nothing is asserted beyond the daemon staying up. --keep DIR leaves the config, store and the
daemon's JSON log there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.probes.mailpeers import DovecotServer, free_port, mail_message  # noqa: E402

SAMPLE_EVERY = 10.0
MAILBOX = "support@example.test"
PASSWORD = "soak-secret"
TEXTS = [
    "Hello, where is my parcel? I ordered it last week.\n",
    "Jó napot! Mikor érkezik meg a múlt héten leadott rendelésem?\n",
    "Dobrý deň, kedy dorazí moja objednávka z minulého týždňa?\n",
    "Dzień dobry, kiedy dotrze moje zamówienie z zeszłego tygodnia?\n",
]
PAGES = ["/status", "/banner.json", "/voice.xml"]


class FlappingPeer:
    """An HTTP health page that is up (200), or down: refusing connections or answering 500."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.server: ThreadingHTTPServer | None = None
        self.downs = 0

    def start(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                status = 200 if peer.mode == "ok" else 500
                body = b"ok\n" if status == 200 else b"broken\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def down(self) -> str:
        self.downs += 1
        if self.downs % 2:
            self.stop()
            return "refused"
        self.mode = "error"
        return "http500"

    def up(self) -> None:
        self.mode = "ok"
        if self.server is None:
            self.start()


def flap(peer: FlappingPeer, rng: random.Random, stop: threading.Event) -> None:
    while not stop.wait(rng.uniform(20, 40)):
        peer.down()
        if stop.wait(rng.uniform(20, 40)):
            break
        peer.up()


def feed_mail(dovecot: DovecotServer, per_second: float, stop: threading.Event, sent: list[int]) -> None:
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            dovecot.deliver(MAILBOX, mail_message(f"Order {i}", TEXTS[i % 4], sender=f"c{i}@example.test",
                                                  to=MAILBOX), sender=f"c{i}@example.test")
            sent[0] += 1
        except OSError:
            sent[1] += 1
        i += 1
        next_at += 1 / per_second
        stop.wait(max(0.0, next_at - time.monotonic()))


@dataclass
class PageStats:
    statuses: Counter[str]
    latencies: list[tuple[float, float]]  # (monotonic time, seconds)


def poll_pages(port: int, per_second: float, stop: threading.Event, stats: PageStats) -> None:
    i = 0
    next_at = time.monotonic()
    while not stop.is_set():
        path = PAGES[i % len(PAGES)]
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                r.read()
                code = str(r.status)
        except urllib.error.HTTPError as exc:
            code = str(exc.code)
        except OSError as exc:
            code = type(exc).__name__
        stats.latencies.append((t0, time.monotonic() - t0))
        stats.statuses[f"{path} {code}"] += 1
        i += 1
        next_at += 1 / per_second
        stop.wait(max(0.0, next_at - time.monotonic()))


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


def start_dovecot() -> DovecotServer:
    """Dovecot's master writes its pid file a moment after it returns: on a loaded machine, try again."""
    for attempt in range(3):
        try:
            return DovecotServer({MAILBOX: PASSWORD}).start()
        except (OSError, ValueError, RuntimeError):
            if attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def write_config(workdir: Path, peer_port: int, bind_port: int, dovecot: DovecotServer | None,
                 smtp_port: int) -> Path:
    cfg = yaml.safe_load((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
    phone = cfg["channels"]["phone"]
    phone["health"] = {"every": "1s", "fail_after": 2, "recover_after": 2,
                       "flapping": {"changes": 1000, "window": "1m"},
                       "probes": [{"type": "http", "url": f"http://127.0.0.1:{peer_port}/health", "timeout": "1s"}]}
    phone["override"] = {"website-banner": {"after": "0s"}}
    if dovecot is not None:
        cfg["sinks"]["support"] = {
            "type": "autoreply", "address": MAILBOX, "imap_host": dovecot.host, "imap_port": dovecot.imap_port,
            "imap_security": "none", "imap_password": "${SOAK_PW}", "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port, "smtp_security": "none", "poll_interval": "2s"}
        cfg["routes"]["autoreply"] = ["support"]
    cfg["daemon"]["bind"] = f"127.0.0.1:{bind_port}"
    path = workdir / "continuity.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def vm_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def ledger_counts(workdir: Path) -> tuple[int, int, int, int]:
    """Situations recorded, of which closed, auto-responder answers sent, and the bytes of the pages the store
    uses as a reader sees it (WAL frames included): read-only, beside the daemon."""
    db = workdir / "continuity.db"
    if not db.exists():
        return 0, 0, 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        total, closed = conn.execute("SELECT count(*), coalesce(sum(state = 'closed'), 0) FROM situations").fetchone()
        try:
            sent = conn.execute("SELECT count(*) FROM autoreply_messages WHERE state = 'sent'").fetchone()[0]
        except sqlite3.OperationalError:
            sent = 0
        used = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        return int(total), int(closed), int(sent), int(used)
    except sqlite3.OperationalError:
        return 0, 0, 0, 0
    finally:
        conn.close()


def probe_cycles(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return 0
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("continuity_probe_cycles_total{")))


@dataclass
class Sample:
    minutes: float
    rss: int  # KiB
    fds: int
    db: int  # bytes of continuity.db
    used: int  # bytes of the store's pages, WAL frames included: what the ledger holds
    wal: int  # bytes of continuity.db-wal
    situations: int
    closed: int
    answers: int
    mail: int
    requests: int


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares growth of y per unit of x."""
    if len(points) < 2:
        return float("nan")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else float("nan")


def per(a: float, b: float) -> str:
    return f"{a / b:,.0f}" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--mail-per-second", type=float, default=1.0)
    parser.add_argument("--pages-per-second", type=float, default=5.0)
    parser.add_argument("--show-every", type=float, default=60.0, help="seconds between the rows printed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-mail", action="store_true", help="no mailbox (without Dovecot)")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and leave it there: config, store, log")
    args = parser.parse_args()

    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rng = random.Random(args.seed)
    peer = FlappingPeer()
    peer.start()
    bind_port = free_port()
    dovecot = None if args.no_mail else start_dovecot()
    smtp, smtp_port = (None, 0) if dovecot is None else start_smtp()
    stop = threading.Event()
    mail = [0, 0]
    pages = PageStats(Counter(), [])
    proc: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="continuity-soak-") as tmp:
        workdir = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            workdir = args.keep.resolve()
        config = write_config(workdir, peer.port, bind_port, dovecot, smtp_port)
        log = workdir / "daemon.log"
        env = dict(os.environ, CONTINUITY_USER="bench", SOAK_PW=PASSWORD)
        env.pop("CONTINUITY_NOW", None)
        try:
            with log.open("w") as err:
                proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(config), "daemon",
                                         "--log-format", "json"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                        stderr=err)
            deadline = time.monotonic() + 60
            while probe_cycles(bind_port) < 1:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the daemon did not start probing:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            threads = [threading.Thread(target=flap, args=(peer, rng, stop), daemon=True),
                       threading.Thread(target=poll_pages, args=(bind_port, args.pages_per_second, stop, pages),
                                        daemon=True)]
            if dovecot is not None:
                threads.append(threading.Thread(target=feed_mail, args=(dovecot, args.mail_per_second, stop, mail),
                                                daemon=True))
            for t in threads:
                t.start()
            t0 = time.monotonic()
            mail_txt = f"mail {args.mail_per_second:g}/s into {MAILBOX}" if dovecot else "no mailbox"
            print(f"daemon pid {proc.pid}; phone probed every 1 s against a peer up 20-40 s, down 20-40 s; "
                  f"{mail_txt}; pages {args.pages_per_second:g}/s; sampled every {SAMPLE_EVERY:.0f} s for "
                  f"{args.minutes:g} min")
            print(f"{'time':>6} {'VmRSS MiB':>10} {'fds':>5} {'db KiB':>7} {'used KiB':>9} {'wal KiB':>8} "
                  f"{'situations':>11} {'closed':>7} {'answers':>8} {'mail in':>8} {'requests':>9}", flush=True)
            samples: list[Sample] = []
            next_row = 0.0
            n = 0
            while True:
                elapsed = time.monotonic() - t0
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
                total, closed, sent, used = ledger_counts(workdir)
                s = Sample(elapsed / 60, vm_kib(proc.pid), len(os.listdir(f"/proc/{proc.pid}/fd")),
                           file_bytes(workdir / "continuity.db"), used, file_bytes(workdir / "continuity.db-wal"),
                           total, closed, sent, mail[0], len(pages.latencies))
                samples.append(s)
                last = elapsed >= args.minutes * 60 - 0.5
                if elapsed >= next_row - 0.5 or last:
                    m, sec = divmod(round(elapsed), 60)
                    print(f"{m:3d}:{sec:02d} {s.rss / 1024:10.1f} {s.fds:5d} {s.db / 1024:7.0f} {s.used / 1024:9.0f} "
                          f"{s.wal / 1024:8.0f} {s.situations:11d} {s.closed:7d} {s.answers:8d} {s.mail:8d} "
                          f"{s.requests:9d}", flush=True)
                    next_row += args.show_every
                if last:
                    break
                n += 1
                time.sleep(max(0.0, min(t0 + n * SAMPLE_EVERY, t0 + args.minutes * 60) - time.monotonic()))
            hwm = vm_kib(proc.pid, "VmHWM")
        finally:
            stop.set()
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            peer.up()
            peer.stop()
            if smtp is not None:
                smtp.terminate()
                smtp.wait(10)
            if dovecot is not None:
                dovecot.stop()
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()
                   if line.startswith("{")]
        levels = Counter(doc.get("level") for doc in records)
        errors: dict[Any, tuple[int, str]] = {}
        for doc in records:
            if doc.get("level") in ("error", "critical"):
                count, first = errors.get(doc.get("event"), (0, str(doc.get("msg", ""))[:160]))
                errors[doc.get("event")] = (count + 1, first)

    report(samples, t0, pages, mail, hwm, levels, errors, proc.returncode if proc else None)


def report(samples: list[Sample], t0: float, pages: PageStats, mail: list[int], hwm: int, levels: Counter[Any],
           errors: dict[Any, tuple[int, str]], exit_code: int | None) -> None:
    mid = samples[-1].minutes / 2
    first = [s for s in samples if s.minutes <= mid + 1e-9]
    second = [s for s in samples if s.minutes >= mid - 1e-9]
    print(f"\n{len(samples)} samples; halves split at {mid:.1f} min (the middle sample is in both)")
    print(f"{'per half':<36} {'first':>12} {'second':>12}")

    def row(label: str, a: str, b: str) -> None:
        print(f"{label:<36} {a:>12} {b:>12}")

    rss = [slope([(s.minutes, s.rss / 1024) for s in half]) for half in (first, second)]
    row("VmRSS growth, MiB/min", f"{rss[0]:+.3f}", f"{rss[1]:+.3f}")
    row("VmRSS at the half's end, MiB", f"{first[-1].rss / 1024:.1f}", f"{second[-1].rss / 1024:.1f}")
    fds = [slope([(s.minutes, s.fds) for s in half]) for half in (first, second)]
    row("fds growth, per min", f"{fds[0]:+.2f}", f"{fds[1]:+.2f}")
    row("fds min-max", f"{min(s.fds for s in first)}-{max(s.fds for s in first)}",
        f"{min(s.fds for s in second)}-{max(s.fds for s in second)}")
    for label, attr in [("situations opened", "situations"), ("situations closed", "closed"),
                        ("answers sent", "answers"), ("mail delivered", "mail")]:
        row(label, str(getattr(first[-1], attr) - getattr(first[0], attr)),
            str(getattr(second[-1], attr) - getattr(second[0], attr)))
    grown = [half[-1].used - half[0].used for half in (first, second)]
    opened = [half[-1].situations - half[0].situations for half in (first, second)]
    answered = [half[-1].answers - half[0].answers for half in (first, second)]
    row("store used growth, KiB", f"{grown[0] / 1024:,.0f}", f"{grown[1] / 1024:,.0f}")
    row("files (db + wal) growth, KiB",
        *(f"{(half[-1].db + half[-1].wal - half[0].db - half[0].wal) / 1024:,.0f}" for half in (first, second)))
    row("wal file at the half's end, KiB", *(f"{half[-1].wal / 1024:,.0f}" for half in (first, second)))
    row("store used bytes per situation", per(grown[0], opened[0]), per(grown[1], opened[1]))
    row("store used bytes per answer", per(grown[0], answered[0]), per(grown[1], answered[1]))
    lat = [sorted(d for t, d in pages.latencies if (t - t0) / 60 < mid),
           sorted(d for t, d in pages.latencies if (t - t0) / 60 >= mid)]
    row("page requests", str(len(lat[0])), str(len(lat[1])))
    row("page latency median, ms", *(f"{1000 * statistics.median(v):.1f}" if v else "-" for v in lat))
    row("page latency p95, ms", *(f"{1000 * v[int(0.95 * (len(v) - 1))]:.1f}" if v else "-" for v in lat))

    print(f"\nVmRSS: whole run {(samples[-1].rss - samples[0].rss) / 1024:+.1f} MiB, second half "
          f"{(second[-1].rss - second[0].rss) / 1024:+.1f} MiB; VmHWM {hwm / 1024:.1f} MiB")
    print(f"mail delivery failures: {mail[1]}; pages answered: "
          + ", ".join(f"{k} x{v}" for k, v in sorted(pages.statuses.items())))
    print(f"daemon log lines by level: {dict(sorted((str(k), v) for k, v in levels.items()))}; "
          f"exit code after SIGTERM: {exit_code}")
    for name, (count, text) in errors.items():
        print(f"  error {name} x{count}, the first: {text}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
