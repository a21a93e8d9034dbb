"""Probe fan-out: 1,000 http probes in one cycle, through the code the daemon and `continuity check` run
(continuity.checks.ProbeSet: one probe object per configured probe, one shared httpx client), against a local
server; wall time and CPU time per cycle, next to a baseline in the same run: the same 1,000 GETs through a bare
shared httpx.AsyncClient with asyncio.gather. Goal: a cycle under 2 s on a 2-core machine.

    python bench/probe_fanout.py [--probes 1000] [--cycles 5] [--channels 1000] [--profile FILE]

The server is aiohttp's in a separate process (so it has the other core and its CPU is not counted as ours),
answering `200 ok` with keep-alive on every path; its own CPU per cycle is printed so one can see it is not the
bottleneck. The config is generated: `--channels` channels sharing the probes evenly (1,000 channels with one
probe each by default, the daemon's worst case of one job per channel).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = textwrap.dedent("""
    import os, resource, sys
    from aiohttp import web

    async def ok(request):
        return web.Response(text="ok")

    async def cpu(request):
        r = resource.getrusage(resource.RUSAGE_SELF)
        return web.Response(text=f"{r.ru_utime + r.ru_stime:.6f}")

    app = web.Application()
    app.router.add_get("/_cpu", cpu)
    app.router.add_route("*", "/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
                backlog=4096, handle_signals=True)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the aiohttp server did not start")


def write_config(folder: Path, base_url: str, probes: int, channels: int) -> Path:
    per = [probes // channels + (1 if i < probes % channels else 0) for i in range(channels)]
    lines = ["organisation:", "  name: Fan-out bench", "channels:"]
    n = 0
    for c, count in enumerate(per):
        lines += [f"  c{c:04d}:", "    health:", "      every: 30s", "      probes:"]
        for _ in range(count):
            lines.append(f"        - {{type: http, url: \"{base_url}/p{n:05d}\", timeout: 60s}}")
            n += 1
    path = folder / "continuity.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def server_cpu(client: Any, base_url: str) -> float:
    response = await client.get(base_url + "/_cpu")
    return float(response.text)


Cycle = Callable[[], Awaitable[int]]


async def measure(name: str, cycle: Cycle, cycles: int, control: Any, base_url: str) -> dict[str, Any]:
    """Warm up once (connections, imports), then time `cycles` cycles."""
    ok = await cycle()
    walls, cpus, server = [], [], []
    for _ in range(cycles):
        s0 = await server_cpu(control, base_url)
        c0, w0 = cpu_now(), time.perf_counter()
        ok = await cycle()
        walls.append(time.perf_counter() - w0)
        cpus.append(cpu_now() - c0)
        server.append(await server_cpu(control, base_url) - s0)
    return {"name": name, "ok": ok, "walls": walls, "cpus": cpus, "server": server}


def show(row: dict[str, Any], probes: int) -> None:
    walls, cpus = row["walls"], row["cpus"]
    print(f"{row['name']:<34} up {row['ok']:>5}/{probes}  "
          f"wall median {statistics.median(walls):6.3f} s (min {min(walls):.3f}, max {max(walls):.3f})  "
          f"cpu median {statistics.median(cpus):6.3f} s  server cpu {statistics.median(row['server']):.3f} s")
    print("    per cycle wall: " + " ".join(f"{w:.3f}" for w in walls))
    print("    per cycle cpu:  " + " ".join(f"{c:.3f}" for c in cpus))


async def run(args: argparse.Namespace, base_url: str, config: Path) -> None:
    import httpx

    from continuity import checks
    from continuity.checks import ProbeSet
    from continuity.clock import SystemClock
    from continuity.config.loader import load_config

    if args.pool is not None:  # reproduce another pool layout (e.g. 1000,200: one pool of 200 connections)
        per, conns = (int(x) for x in args.pool.split(","))
        checks.PROBES_PER_CLIENT, checks.CONNECTIONS_PER_CLIENT = per, conns  # type: ignore[misc]
    print(f"ProbeSet pools: {checks.PROBES_PER_CLIENT} probes and {checks.CONNECTIONS_PER_CLIENT} connections each")
    t0 = time.perf_counter()
    loaded = load_config(config)
    probe_set = ProbeSet(loaded, SystemClock())
    total = sum(len(p) for p in probe_set.probes.values())
    print(f"config: {len(probe_set.channels)} channels, {total} http probes (loaded and built in "
          f"{time.perf_counter() - t0:.2f} s)")
    urls = [p.settings.url for probes in probe_set.probes.values() for p in probes]  # type: ignore[attr-defined]

    bare = httpx.AsyncClient(limits=httpx.Limits(max_connections=200, max_keepalive_connections=200))
    control = httpx.AsyncClient()

    async def baseline() -> int:
        async def one(url: str) -> bool:
            response = await bare.get(url, timeout=60)
            return response.status_code == 200

        return sum(await asyncio.gather(*(one(u) for u in urls)))

    async def probes() -> int:
        checks = await probe_set.check_all()
        return sum(1 for c in checks for r in c.results if r.status == "up")

    profiler = cProfile.Profile() if args.profile else None
    try:
        rows = []
        for _ in range(args.rounds):  # interleaved, so drift of a loaded machine hits both alike
            rows.append(await measure("baseline: bare httpx + gather", baseline, args.cycles, control, base_url))
            if profiler is not None:
                profiler.enable()
            rows.append(await measure("continuity ProbeSet.check_all", probes, args.cycles, control, base_url))
            if profiler is not None:
                profiler.disable()
        by_name: dict[str, dict[str, Any]] = {}
        for row in rows:
            merged = by_name.setdefault(row["name"], {"name": row["name"], "ok": row["ok"], "walls": [],
                                                      "cpus": [], "server": []})
            for key in ("walls", "cpus", "server"):
                merged[key] += row[key]
            merged["ok"] = min(merged["ok"], row["ok"])
        print()
        for row in by_name.values():
            show(row, total)
        base, ours = by_name["baseline: bare httpx + gather"], by_name["continuity ProbeSet.check_all"]
        ratio_wall = statistics.median(ours["walls"]) / statistics.median(base["walls"])
        ratio_cpu = statistics.median(ours["cpus"]) / statistics.median(base["cpus"])
        print(f"\nratio continuity / baseline: wall {ratio_wall:.2f}x, cpu {ratio_cpu:.2f}x")
        worst = max(ours["walls"])
        print(f"goal: a cycle under 2 s -> slowest cycle {worst:.3f} s: {'MET' if worst < 2 else 'NOT MET'}")
    finally:
        await probe_set.aclose()
        await bare.aclose()
        await control.aclose()
    if profiler is not None:
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=None, help="default: one channel per probe")
    parser.add_argument("--cycles", type=int, default=5, help="timed cycles per round")
    parser.add_argument("--rounds", type=int, default=2, help="baseline/continuity rounds, interleaved")
    parser.add_argument("--pool", default=None, metavar="PROBES,CONNECTIONS",
                        help="ProbeSet pool layout to measure instead of the shipped one (1000,200 = the old one)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the continuity cycles here")
    args = parser.parse_args()
    channels = args.channels or args.probes
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; server: aiohttp in its own process")
    server, base_url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), base_url, args.probes, channels)
            asyncio.run(run(args, base_url, config))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
