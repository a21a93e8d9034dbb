"""History at scale: the monthly report over a year of history, and /status with its 90 days of uptime
against the same page without them (as before the uptime), on one store.

A year of ledger (N situations, each with S steps and its opened/closed events, spread over the 365 days
before now on the shipped example's channels, one in ten a maintenance window) is written into a SQLite store
through the store's own methods. Then:

1. `continuity report --month` (the last whole month, md and json) as a real CLI process, wall time, and
   `history.period_report` in-process (the figures alone);
2. a server process with the daemon's public routes (continuity.public.web) on that store, the same page
   rendered without the uptime section at /status-without-uptime, and /status-every-time (the page with its
   90 days rendered and hashed at each request, as before it was kept between ledger changes); a client
   keeping C requests in flight asks each R times, in turns. The ratio of the two rates is the cost of the 90
   days (goal: at least 0.8); the server's own CPU time per request (/proc/PID/stat) gives the same ratio
   without the noise of other work on the machine.

    python bench/history.py [--situations 10000] [--steps 10] [--requests 2000] [--concurrency 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(config: Path, situations: int, steps: int, now: datetime) -> None:
    """A year of ledger before `now`, written through the store's methods in batches."""
    from continuity.config.loader import load_config
    from continuity.store import open_store

    loaded = load_config(config)
    store = open_store(loaded.store_url, loaded.base_dir)
    channels = list(loaded.config.channels)
    rnd = random.Random(17)
    year = 365 * 86400
    starts = sorted(rnd.uniform(0, year - 7200) for _ in range(situations))
    try:
        for batch in range(0, situations, 500):
            with store.transaction():
                for i in range(batch, min(batch + 500, situations)):
                    opened = now - timedelta(seconds=year) + timedelta(seconds=starts[i])
                    length = timedelta(seconds=rnd.randint(120, 5400))
                    kind = "maintenance" if i % 10 == 9 else "outage"
                    data = {"maintenance": {"starts_at": opened.isoformat(), "ends_at": (opened + length).isoformat()}
                            } if kind == "maintenance" else {}
                    sid = store.insert_situation(kind=kind, channel=channels[i % len(channels)],
                                                 playbook=f"{kind}-x", source="cli", opened_by="bench",
                                                 reason="bench", eta=None, opened_at=opened, data=data)
                    store.add_event(sid, opened, "opened", "opened by bench")
                    for k in range(steps):
                        action = ("notify", "notice", "banner", "autoreply", "post")[k % 5]
                        due = opened + timedelta(minutes=k * 3)
                        row = store.insert_step(situation_id=sid, key=f"{sid}:{k}", phase="open", step_id=f"s{k}",
                                                occurrence=1, action=action, sink="outbox", template="t",
                                                reversible=False, idempotent=True, every_s=None, due_at=due)
                        assert row is not None
                        store.set_step(row, state="done", attempts=1, started_at=due, finished_at=due)
                    store.update_situation(sid, state="closed", closed_at=opened + length, closed_by="bench")
                    store.add_event(sid, opened + length, "closed", "closed by bench")
    finally:
        store.close()


def serve(config: Path, port: int, now: str) -> None:
    """The public routes on the store, and /status-without-uptime: the page as before the 90 days."""
    from aiohttp import web

    from continuity.clock import parse_clock_override
    from continuity.config.loader import load_config
    from continuity.public.status import STATUS_TEMPLATE, build_status, language_name, public_situations
    from continuity.public.web import PublicSite, add_public_routes
    from continuity.store import open_store

    class Served:
        def __init__(self) -> None:
            self.loaded = load_config(config)
            self.store = open_store(self.loaded.store_url, self.loaded.base_dir)
            self.clock = parse_clock_override(now)
            self.health: dict[str, Any] = {}
            self.last_cycle_at: dict[str, datetime] = {}

    served = Served()
    site = PublicSite(served)  # type: ignore[arg-type]

    async def without(request: web.Request) -> web.Response:
        loaded, at = served.loaded, served.clock.now()
        locale = loaded.config.organisation.default_locale
        data = build_status(loaded, public_situations(loaded, served.store, at), served.store.events_for, {}, at,
                            locale)
        rel = site.page.catalog.find(STATUS_TEMPLATE, locale)
        assert rel is not None
        languages = [{"code": loc, "name": language_name(loc), "current": loc == locale} for loc in data["locales"]]
        html = site.page.env.get_template(rel).render(**data, languages=languages, refresh_seconds=60,
                                                     uptime_style="", uptime_section="")
        return web.Response(text=html, content_type="text/html")

    async def every_time(request: web.Request) -> web.Response:
        """/status as it was answered before the page was kept: its data, rendering and ETag at each request."""
        import hashlib

        from continuity.public.status import status_data
        from continuity.public.web import health_states

        locale = served.loaded.config.organisation.default_locale
        data = status_data(served.loaded, served.store, health_states(served), served.clock.now(), locale)
        body = site.page.render(data).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return web.Response(body=body, headers={"ETag": etag, "Content-Language": locale,
                                                "Content-Type": "text/html; charset=utf-8"})

    app = web.Application()
    add_public_routes(app, served)  # type: ignore[arg-type]
    app.router.add_get("/status-without-uptime", without)
    app.router.add_get("/status-every-time", every_time)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def hammer(url: str, n: int, c: int) -> tuple[float, int, set[int]]:
    import aiohttp

    statuses: set[int] = set()
    size = 0
    todo = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal size
        for _ in todo:
            async with session.get(url) as r:
                size = len(await r.read())
                statuses.add(r.status)

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(c)))
        return n / (time.perf_counter() - start), size, statuses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--situations", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "NOW"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.serve[2])
        return
    work = Path(tempfile.mkdtemp(prefix="continuity-bench-history-"))
    config = work / "continuity.yaml"
    config.write_text((ROOT / "playbooks.example.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)
    env = {k: v for k, v in os.environ.items() if k != "CONTINUITY_NOW"}
    env["CONTINUITY_NOW"] = now.isoformat()
    try:
        t0 = time.perf_counter()
        build(config, args.situations, args.steps, now)
        print(f"history: {args.situations} situations, {args.situations * args.steps} steps over 365 days "
              f"(written in {time.perf_counter() - t0:.1f} s)")
        last = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        cli = [sys.executable, "-m", "continuity", "--config", str(config), "report", "--month", last]
        for fmt in ("md", "json", "html"):
            took = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run([*cli, "--format", fmt], cwd=work, env=env, check=True, capture_output=True)
                took.append(time.perf_counter() - t0)
            print(f"continuity report --month {last} --format {fmt:<4} (real process, best of 3): "
                  f"{min(took):.2f} s  (goal < 2 s; all: {', '.join(f'{t:.2f}' for t in took)})")
        from continuity.config.loader import load_config
        from continuity.history import month_period, period_report
        from continuity.store import open_store

        loaded = load_config(config)
        store = open_store(loaded.store_url, loaded.base_dir)
        tz = loaded.config.organisation.timezone
        t0 = time.perf_counter()
        rep = period_report(store, list(loaded.config.channels), tz, *month_period(last, tz), now)
        print(f"history.period_report in-process: {time.perf_counter() - t0:.2f} s "
              f"({len(rep['situations'])} outages in {last})")
        store.close()

        port = free_port()
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(config), str(port), now.isoformat()],
                                  cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/status-without-uptime", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            urllib.request.urlopen(base + "/status", timeout=30).close()  # the first counts the 90 days
            print(f"{args.requests} requests per route, {args.concurrency} in flight, server pid {server.pid}")
            rates: dict[str, list[float]] = {}
            cpu: dict[str, list[float]] = {}
            for path in ("/status-without-uptime", "/status", "/status-every-time") * args.rounds:
                before = cpu_seconds(server.pid)
                rate, size, statuses = asyncio.run(hammer(base + path, args.requests, args.concurrency))
                per = (cpu_seconds(server.pid) - before) / args.requests * 1000
                rates.setdefault(path, []).append(rate)
                cpu.setdefault(path, []).append(per)
                print(f"{path:<24} {rate:8.0f} req/s {size:8d} bytes  server CPU {per:.2f} ms/request "
                      f"{sorted(statuses)}")
            ratio = max(rates["/status"]) / max(rates["/status-without-uptime"])
            print(f"/status with the 90 days / without (best of {args.rounds} each, taken in turns): {ratio:.2f}x"
                  "  (goal >= 0.8x)")
            ratio = min(cpu["/status-without-uptime"]) / min(cpu["/status"])
            print(f"the same as requests per server CPU second (steadier on a busy machine): {ratio:.2f}x")
            ratio = max(rates["/status-every-time"]) / max(rates["/status-without-uptime"])
            per = min(cpu["/status-without-uptime"]) / min(cpu["/status-every-time"])
            print(f"/status rendered at every request (as before the page was kept) / without: {ratio:.2f}x, "
                  f"per server CPU second {per:.2f}x")
        finally:
            server.terminate()
            server.wait(15)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
