"""Detection to action: from the moment an HTTP peer fails to the website banner file existing, measured on a
real `continuity daemon` process, against the floor its health settings allow, in the same run.

    python bench/detection_latency.py [--reps N] [--every S] [--fail-after N] [--timeout S] [--modes ...]

The peer is a local HTTP server the bench controls. Each repetition waits for a probe to be answered and fails
the peer right after it, the worst moment (a whole interval before the next probe), so the ideal detector
reaches its floor exactly:

- refused (the server stops listening) and http500: a failing probe answers at once, so the floor is
  every x fail_after; the probe timeout plays no part.
- hang (the server accepts and never answers): each failing probe takes its whole timeout, so the floor is
  every x fail_after + timeout (with timeout <= every; a longer timeout stretches the cycle to the timeout).

Between repetitions the peer comes back and the bench waits for the outage to close and the banner to go.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BANNER = Path("site/banner/continuity-banner.json")
POLL = 0.005  # how often the bench looks for the banner file; the resolution of every figure below


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peer:
    """An HTTP health page that can answer 200, answer 500, hang, or stop listening; it notes each answer."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"
        self.release = threading.Event()
        self.answered = threading.Condition()
        self.last_answer = 0.0
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if peer.mode == "hang":
                    peer.release.wait(30)
                    return
                status = 200 if peer.mode == "ok" else 500
                body = b"ok\n" if status == 200 else b"broken\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with peer.answered:
                    peer.last_answer = time.time()
                    peer.answered.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for_answer(self, timeout: float) -> float:
        """Block until the next 200 goes out; return its wall time."""
        with self.answered:
            before = self.last_answer
            if not self.answered.wait_for(lambda: self.last_answer != before, timeout):
                raise RuntimeError("no probe reached the peer")
            return self.last_answer

    def fail(self, how: str) -> None:
        if how == "refused":
            self.stop()
        else:
            self.release.clear()
            self.mode = "hang" if how == "hang" else "error"

    def heal(self) -> None:
        self.mode = "ok"
        self.release.set()
        if self.server is None:
            self.start()


def write_config(workdir: Path, peer_port: int, http_port: int, every: int, fail_after: int, timeout: int) -> Path:
    text = (ROOT / "playbooks.example.yaml").read_text(encoding="utf-8")
    anchor = "  email:\n    contact: help@shop.example.test\n"
    assert anchor in text
    text = text.replace(anchor, anchor + f"""    health:
      every: {every}s
      fail_after: {fail_after}
      recover_after: 1
      flapping: {{changes: 1000, window: 1m}}
      probes:
        - {{type: http, url: "http://127.0.0.1:{peer_port}/health", timeout: {timeout}s}}
    override:
      website-banner: {{after: 0s}}
""", 1)
    text = text.replace("  inline_budget: 10s", "  inline_budget: 0s")
    text = text.replace("  bind: 127.0.0.1:8765\n", f"  bind: 127.0.0.1:{http_port}\n", 1)
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def healthz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return dict(json.loads(r.read()))
    except OSError:
        return {}


def outage_state(workdir: Path) -> str | None:
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        row = conn.execute("SELECT state FROM situations ORDER BY id DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def log_times(log: Path, since: float) -> dict[str, float]:
    """Wall times of the daemon's first channel.down and outage.opened log lines after `since`."""
    found: dict[str, float] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        when = datetime.fromisoformat(doc["ts"]).timestamp()
        if when < since - 0.002:
            continue
        name = doc.get("event")
        if name in ("channel.down", "outage.opened") and name not in found:
            found[name] = when
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--fail-after", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1)
    parser.add_argument("--modes", nargs="+", default=["refused", "http500", "hang"],
                        choices=["refused", "http500", "hang"])
    args = parser.parse_args()

    peer = Peer()
    peer.start()
    http_port = free_port()
    with tempfile.TemporaryDirectory(prefix="continuity-detect-") as tmp:
        workdir = Path(tmp)
        config = write_config(workdir, peer.port, http_port, args.every, args.fail_after, args.timeout)
        log = workdir / "daemon.log"
        env = dict(os.environ, CONTINUITY_USER="bench")
        env.pop("CONTINUITY_NOW", None)
        with log.open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(config), "daemon",
                                     "--log-format", "json"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                    stderr=err)
        try:
            wait_for(lambda: healthz(http_port).get("channels", {}).get("email", {}).get("last_check"), 30,
                     "the daemon's first probe cycle")
            print(f"every {args.every}s, fail_after {args.fail_after}, probe timeout {args.timeout}s, "
                  f"{args.reps} repetitions per mode; banner polled every {POLL * 1000:.0f} ms")
            for mode in args.modes:
                run_mode(mode, args, peer, workdir, log)
            skipped = log.read_text(encoding="utf-8").count("maximum number of running instances")
            print(f"probe cycles skipped by the scheduler (overlap): {skipped}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            peer.heal()
            peer.stop()


def run_mode(mode: str, args: argparse.Namespace, peer: Peer, workdir: Path, log: Path) -> None:
    floor = args.every * args.fail_after + (args.timeout if mode == "hang" else 0)
    ratios: list[float] = []
    print(f"\n{mode}: floor = every x fail_after{' + timeout' if mode == 'hang' else ''} = {floor:.1f} s")
    print("  rep  fail->banner  ratio   fail->down  down->opened  opened->banner")
    for rep in range(1, args.reps + 1):
        last_pass = peer.wait_for_answer(3 * args.every + 5)
        peer.fail(mode)
        t0 = time.time()
        wait_for(lambda: (workdir / BANNER).exists(), floor * 5 + 10, "the banner", POLL)
        t1 = time.time()
        lat = t1 - t0
        ratios.append(lat / floor)
        peer.heal()
        wait_for(lambda: not (workdir / BANNER).exists() and outage_state(workdir) == "closed", 30,
                 "the outage to close")
        wait_for(lambda: healthz(int(args_port(workdir))).get("channels", {}).get("email", {}).get("state") == "up",
                 30, "the channel to be up")
        # The daemon logs a step after writing it, so its log is read once the outage is over.
        marks = log_times(log, t0)
        down, opened = (marks.get(k, float("nan")) for k in ("channel.down", "outage.opened"))
        print(f"  {rep:>3}  {lat:9.3f} s  {lat / floor:5.2f}   {down - t0:8.3f} s  {opened - down:10.3f} s  "
              f"{t1 - opened:11.3f} s   (failed {1000 * (t0 - last_pass):.0f} ms after the last pass)")
    print(f"  ratio to floor: median {statistics.median(ratios):.2f}, max {max(ratios):.2f} (goal <= 1.2)")


def args_port(workdir: Path) -> str:
    text = (workdir / "continuity.yaml").read_text(encoding="utf-8")
    return text.split("  bind: 127.0.0.1:", 1)[1].split("\n", 1)[0]


if __name__ == "__main__":
    main()
