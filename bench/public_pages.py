"""Public pages under load: how many /banner.json (fresh and 304), /status and /voice.xml answers a real
`continuity daemon` gives per second during a phone outage, with every visitor's browser polling.

The daemon runs as its own process on loopback (the shipped example config, the banner switched on at once);
a client in this process keeps C requests in flight for N requests per route.

    python bench/public_pages.py [N] [C]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def hammer(url: str, n: int, c: int, headers: dict[str, str]) -> tuple[float, int, set[int]]:
    import aiohttp

    statuses: set[int] = set()
    size = 0
    todo = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal size
        for _ in todo:
            async with session.get(url, headers=headers) as r:
                size = len(await r.read())
                statuses.add(r.status)

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(c)))
        return n / (time.perf_counter() - start), size, statuses


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    work = Path(tempfile.mkdtemp(prefix="continuity-bench-public-"))
    port = free_port()
    text = (ROOT / "playbooks.example.yaml").read_text(encoding="utf-8")
    text = text.replace('    contact: "+36 1 234 5678"\n',
                        '    contact: "+36 1 234 5678"\n    override:\n      website-banner: {after: 0s}\n', 1)
    text = text.replace("  bind: 127.0.0.1:8765\n", f"  bind: 127.0.0.1:{port}\n", 1)
    config = work / "continuity.yaml"
    config.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CONTINUITY_NOW"}
    cli = [sys.executable, "-m", "continuity", "--config", str(config)]
    daemon = subprocess.Popen([*cli, "daemon"], cwd=work, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        subprocess.run([*cli, "outage", "phone", "--reason", "SIP trunk down", "--eta", "2h"], cwd=work, env=env,
                       check=True, capture_output=True)
        with urllib.request.urlopen(base + "/banner.json") as r:
            etag = r.headers["ETag"]
        print(f"{n} requests per route, {c} in flight, daemon pid {daemon.pid}, one phone outage open")
        base_rate, _, _ = asyncio.run(hammer(base + "/healthz", n, c, {}))
        print(f"baseline /healthz (same server, no store or rendering): {base_rate:.0f} req/s")
        print(f"{'route':<34} {'req/s':>8} {'bytes':>7} {'of baseline':>12}  status")
        for label, path, headers in [
            ("/banner.json", "/banner.json", {}),
            ("/banner.json (If-None-Match: 304)", "/banner.json", {"If-None-Match": etag}),
            ("/banner.js", "/banner.js", {}),
            ("/status (hu)", "/status", {}),
            ("/status.json (en)", "/status.json?lang=en", {}),
            ("/voice.xml (4 languages)", "/voice.xml", {}),
        ]:
            rate, size, statuses = asyncio.run(hammer(base + path, n, c, headers))
            print(f"{label:<34} {rate:8.0f} {size:7d} {rate / base_rate:12.2f}  {sorted(statuses)}")
    finally:
        daemon.terminate()
        daemon.wait(15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
