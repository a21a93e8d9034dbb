"""Resident memory of `continuity daemon` watching 50 channels (http and tcp probes against loopback servers,
every 1 s to 5 s) over time, against the resident memory of a bare interpreter and of the CLI's imports, measured
in the same run.

    python bench/daemon_memory.py [--minutes 10] [--channels 50]

VmRSS comes from /proc/PID/status. The daemon is sampled every 30 s; the table shows the start (first probe
cycle done), 1, 5 and 10 minutes (those within --minutes) and the end, with the number of probe cycles run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVERY = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def start_http_peer() -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def start_tcp_peer() -> tuple[socket.socket, int]:
    """Accepts connections and closes them, like any listening service does for a connect check."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock, int(sock.getsockname()[1])


def write_config(workdir: Path, channels: int, http_port: int, tcp_port: int, bind_port: int) -> Path:
    cfg = yaml.safe_load((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"))
    for i in range(channels):
        every = 1 + i % 5  # 1 s .. 5 s
        probe: dict[str, Any] = (
            {"type": "http", "url": f"http://127.0.0.1:{http_port}/health/{i}", "timeout": "2s"} if i % 2 == 0
            else {"type": "tcp", "host": "127.0.0.1", "port": tcp_port, "timeout": "2s"})
        cfg["channels"][f"svc-{i:02d}"] = {"contact": f"svc-{i:02d}@shop.example.test",
                                           "health": {"every": f"{every}s", "probes": [probe]}}
    cfg["daemon"]["bind"] = f"127.0.0.1:{bind_port}"
    path = workdir / "continuity.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def baseline(code: str) -> int:
    """VmRSS (KiB) of `python -c code` once it has done its imports and sits idle."""
    proc = subprocess.Popen([sys.executable, "-c", code + "\nimport sys, time\nprint('ready', flush=True)\n"
                             "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        return rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def cycles_run(port: int) -> int:
    total = 0.0
    for line in get(f"http://127.0.0.1:{port}/metrics").splitlines():
        if line.startswith("continuity_probe_cycles_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=50)
    args = parser.parse_args()

    mib = 1024.0
    bare = baseline("pass")
    cli = baseline("import continuity.cli")
    libs = baseline("import continuity.cli, continuity.daemon.service, continuity.daemon.http, httpx, aiohttp.web, "
                    "apscheduler.schedulers.asyncio, prometheus_client")
    print(f"baseline, bare interpreter (python -c sleep):        {bare / mib:6.1f} MiB")
    print(f"baseline, CLI imports (continuity --help level):     {cli / mib:6.1f} MiB")
    print(f"baseline, CLI + daemon libraries imported, idle:     {libs / mib:6.1f} MiB")

    http_server, http_port = start_http_peer()
    tcp_sock, tcp_port = start_tcp_peer()
    bind_port = free_port()
    with tempfile.TemporaryDirectory(prefix="continuity-mem-") as tmp:
        workdir = Path(tmp)
        config = write_config(workdir, args.channels, http_port, tcp_port, bind_port)
        env = dict(os.environ, CONTINUITY_USER="bench")
        env.pop("CONTINUITY_NOW", None)
        with (workdir / "daemon.log").open("w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(config), "daemon",
                                     "--log-format", "json"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                    stderr=err)
        try:
            deadline = time.monotonic() + 60
            while cycles_run(bind_port) < args.channels:  # every channel probed once
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the daemon did not start probing")
                time.sleep(0.2)
            t0 = time.monotonic()
            marks = [m for m in (1.0, 5.0, 10.0) if m < args.minutes] + [args.minutes]
            print(f"\ndaemon pid {proc.pid}, {args.channels} channels, sampled every {SAMPLE_EVERY:.0f} s for "
                  f"{args.minutes:g} min")
            print("    time   VmRSS MiB   VmHWM MiB   probe cycles   healthz")
            samples: list[tuple[float, int]] = []
            shown: set[float] = set()

            def sample(label: str | None) -> None:
                elapsed = (time.monotonic() - t0) / 60
                rss = rss_kib(proc.pid)
                samples.append((elapsed, rss))
                if label is not None:
                    health = get(f"http://127.0.0.1:{bind_port}/healthz")
                    ok = json.loads(health).get("ok") if health else None
                    print(f"  {label:>6}   {rss / mib:9.1f}   {rss_kib(proc.pid, 'VmHWM') / mib:9.1f}   "
                          f"{cycles_run(bind_port):12d}   {ok}", flush=True)

            sample("start")
            next_sample = SAMPLE_EVERY
            while True:
                elapsed = time.monotonic() - t0
                due = [m for m in marks if m not in shown and elapsed >= m * 60]
                if due:
                    shown.update(due)
                    sample(f"{due[-1]:g} min")
                    if max(marks) in shown:
                        break
                    continue
                if elapsed >= next_sample:
                    sample(None)
                    next_sample += SAMPLE_EVERY
                time.sleep(0.5)
            rss_values = [r for _, r in samples]
            first_minute = [r for t, r in samples if t <= 1.0] or rss_values
            print(f"\nall {len(samples)} samples: min {min(rss_values) / mib:.1f} MiB, max {max(rss_values) / mib:.1f} "
                  f"MiB; growth after the first minute: {(rss_values[-1] - max(first_minute)) / mib:+.1f} MiB")
            print(f"daemon / bare interpreter: {rss_values[-1] / bare:.1f}x; daemon - CLI imports: "
                  f"{(rss_values[-1] - cli) / mib:.1f} MiB; daemon - CLI + daemon libraries: "
                  f"{(rss_values[-1] - libs) / mib:.1f} MiB (goal: daemon under 100 MB)")
            opened = (workdir / "continuity.db").exists() and "outage.opened" in (workdir / "daemon.log").read_text()
            print(f"outages opened during the run: {'yes (check the peers)' if opened else 'none'}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            http_server.shutdown()
            tcp_sock.close()


if __name__ == "__main__":
    main()
