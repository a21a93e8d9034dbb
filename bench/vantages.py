"""Vantages: (1) heartbeat loss → outage opened, against the floor `max_silence` (goal ≤ 1.2×); (2) one daemon
taking the reports of 50 agents × 20 probes each at 1 s: the daemon's CPU and RSS, and the posts' latency.

    python bench/vantages.py [--max-silence 10] [--losses 3] [--agents 50] [--probes 20] [--seconds 30]

A real `continuity daemon` process on loopback each time. Part 1 pings POST /api/heartbeat/office every
0.5 s, stops, and times the outage opening in the ledger (polled every 20 ms); a ping closes it again. Part 2
posts what 50 agents would (one POST per agent per second, one observation per channel, 20 channels each
seen from all 50 vantages with quorum 26) from this process, and reads the daemon's CPU and RSS from /proc,
against the same daemon's first 5 s with no agent reporting (the baseline of the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
IDLE_SECONDS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(workdir: Path, config: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (workdir / "continuity.yaml").write_text(config.replace("PORT", str(port)), encoding="utf-8")
    env = {**os.environ, "CONTINUITY_API_TOKEN": TOKEN}
    env.pop("CONTINUITY_NOW", None)
    proc = subprocess.Popen([sys.executable, "-m", "continuity", "--config", str(workdir / "continuity.yaml"),
                             "daemon"], cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=(workdir / "daemon.log").open("w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the daemon did not start; see daemon.log")


def post(port: int, path: str, body: object) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).close()


def open_internet(workdir: Path) -> bool:
    conn = sqlite3.connect(workdir / "continuity.db")
    try:
        return bool(conn.execute("SELECT 1 FROM situations WHERE channel = 'internet' AND state = 'open'").fetchall())
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def heartbeat_loss(max_silence: int, losses: int) -> list[float]:
    config = f"""
organisation: {{name: Bench, default_locale: en, locales: [en]}}
channels:
  internet:
    contact: uplink
    health:
      every: 1s
      fail_after: 1
      recover_after: 1
      flapping: {{changes: 100, window: 1m}}
      probes:
        - {{type: heartbeat, vantage: office, max_silence: {max_silence}s}}
retry: {{inline_budget: 0s}}
daemon: {{bind: 127.0.0.1:PORT, vantage: central}}
"""
    took = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, port = start_daemon(workdir, config)
        try:
            for _ in range(losses):
                for _ in range(6):
                    post(port, "/api/heartbeat/office", {})
                    time.sleep(0.5)
                while open_internet(workdir):  # the last loss's outage closes on these pings
                    post(port, "/api/heartbeat/office", {})
                    time.sleep(0.5)
                post(port, "/api/heartbeat/office", {})
                last = time.monotonic()
                while not open_internet(workdir):
                    time.sleep(0.02)
                took.append(time.monotonic() - last)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    return took


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def agents_load(port: int, agents: int, probes: int, seconds: int) -> list[float]:
    import httpx

    latencies: list[float] = []
    names = [f"a{i:02d}" for i in range(agents)]

    async def agent(client: httpx.AsyncClient, name: str, offset: float) -> None:
        await asyncio.sleep(offset)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            body = {"vantage": name, "observations": [
                {"channel": f"c{c:02d}", "status": "up", "reason": "",
                 "probes": [{"probe": "http", "status": "up", "latency_ms": 3.1, "reason": ""}]}
                for c in range(probes)]}
            resp = await client.post(f"http://127.0.0.1:{port}/api/observations", json=body)
            resp.raise_for_status()
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10,
                                 limits=httpx.Limits(max_connections=agents)) as client:
        await asyncio.gather(*(agent(client, n, i / agents) for i, n in enumerate(names)))
    return latencies


def load(agents: int, probes: int, seconds: int) -> dict[str, float]:
    vantages = ", ".join(f"a{i:02d}" for i in range(agents))
    channels = "".join(f"""
  c{c:02d}:
    contact: c{c:02d}
    health:
      every: 1s
      quorum: {agents // 2 + 1}
      probes:
        - {{type: http, url: "http://127.0.0.1:9/c{c:02d}", vantages: [{vantages}]}}
""" for c in range(probes))
    config = f"""
organisation: {{name: Bench, default_locale: en, locales: [en]}}
channels:{channels}
retry: {{inline_budget: 0s}}
daemon: {{bind: 127.0.0.1:PORT, vantage: central}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, port = start_daemon(workdir, config)
        try:
            time.sleep(2)
            # The baseline, same daemon, same run: its own probe cycles with no agent reporting.
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(IDLE_SECONDS)
            idle = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            cpu0, t0, rss0 = cpu_seconds(proc.pid), time.monotonic(), rss_mb(proc.pid)
            lat = asyncio.run(agents_load(port, agents, probes, seconds))
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
            opened = sqlite3.connect(workdir / "continuity.db").execute("SELECT COUNT(*) FROM situations").fetchone()
            return {"cpu_share": cpu, "cpu_idle": idle, "rss_mb_before": rss0, "rss_mb_after": rss_mb(proc.pid),
                    "posts": len(lat), "post_p50_ms": statistics.median(lat) * 1000,
                    "post_p99_ms": sorted(lat)[int(len(lat) * 0.99)] * 1000, "situations": opened[0]}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-silence", type=int, default=10)
    parser.add_argument("--losses", type=int, default=3)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    took = heartbeat_loss(args.max_silence, args.losses)
    worst = max(took)
    print(f"heartbeat loss → outage opened: {', '.join(f'{t:.2f}s' for t in took)} against max_silence "
          f"{args.max_silence}s: worst {worst / args.max_silence:.2f}× (goal ≤ 1.2×)")
    result = load(args.agents, args.probes, args.seconds)
    print(f"{args.agents} agents × {args.probes} probes at 1 s for {args.seconds}s: daemon CPU "
          f"{result['cpu_share'] * 100:.1f}% of a core (idle, no agent: {result['cpu_idle'] * 100:.1f}%), "
          f"RSS {result['rss_mb_before']:.0f} → "
          f"{result['rss_mb_after']:.0f} MB, {result['posts']:.0f} posts, p50 {result['post_p50_ms']:.1f} ms, "
          f"p99 {result['post_p99_ms']:.1f} ms, situations opened {result['situations']:.0f}")


if __name__ == "__main__":
    main()
