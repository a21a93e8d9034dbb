"""What the ledger costs per step: N steps through the engine (plan, claim, render, apply, record) against
the same N renderings written straight to the outbox sink, in the same run.

    python bench/ledger_overhead.py [N] [--store-url URL]

The templates are compiled once before either part is timed (a throwaway run of a small playbook), so neither
pays for compiling them; it also prints one write+fsync of a small file on the same disk in the same run, the
floor under both (the outbox syncs every file, the ledger every transaction). `--store-url` runs the timed engine
part on that store (an empty one, e.g. a fresh postgresql:// database) instead of a new SQLite file.

Both parts are timed in CPU seconds of this process (`time.process_time`) as well as wall seconds: on a shared
machine the wall time swings with other work and with the disk's queue; the CPU time is what a step takes from
the machine. The goal lines use the CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from continuity.clock import ManualClock
from continuity.config.loader import load_config
from continuity.engine import Engine
from continuity.runner import Runner
from continuity.store import open_store
from continuity.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def setup(workdir: Path, reminders: int) -> Path:
    text = (ROOT / "playbooks.example.yaml").read_text(encoding="utf-8")
    text = text.replace("  website: [website]", "  website: [outbox]")
    text = text.replace("    # override:\n", "    add_steps:\n" + "".join(
        f"      - {{id: extra-{i}, after: 0m, action: notify, to: staff, template: outage/staff-reminder}}\n"
        for i in range(reminders)) + "    # override:\n", 1)
    path = workdir / "continuity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def through_engine(config: Path, db: str = "bench.db", store_url: str | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, steps run) of opening the outage and running its steps."""
    loaded = load_config(config)
    store = open_store(store_url, config.parent) if store_url else SqliteStore(config.parent / db)
    engine = Engine(loaded, store, ManualClock(START))
    t0, c0 = time.perf_counter(), time.process_time()
    opened = engine.open("phone", reason="bench", eta=timedelta(hours=2), by="bench")
    results = engine.run_due([opened.situation.id])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(r.state == "done" for r in results), [r.detail for r in results if r.state != "done"]
    store.close()
    return elapsed, cpu, len(results)


def direct(config: Path, n: int) -> tuple[float, float]:
    """Baseline: render and write the same actions with no ledger at all."""
    loaded = load_config(config)
    store = SqliteStore(config.parent / "baseline.db")
    engine = Engine(loaded, store, ManualClock(START))
    opened = engine.open("phone", reason="bench", eta=timedelta(hours=2), by="bench")
    rows = [r for r in store.steps_for(opened.situation.id) if r.state == "planned" and r.due_at <= START][:n]
    runner = Runner(engine)
    sink = runner.sink("outbox")
    t0, c0 = time.perf_counter(), time.process_time()

    async def go() -> None:
        await asyncio.gather(*(sink.apply(runner.build_action(r)) for r in rows))

    asyncio.run(go())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    store.close()
    return elapsed, cpu


def fsync_cost(folder: Path, n: int = 50) -> float:
    """Seconds for one small file written and fsynced in `folder`: the disk's floor for one durable write."""
    started = time.perf_counter()
    for i in range(n):
        path = folder / f"sync-{i}"
        with open(path, "wb") as fh:
            fh.write(b"x" * 2048)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=500)
    parser.add_argument("--store-url", default=None, help="time the engine on this (empty) store")
    args = parser.parse_args()
    n = args.n
    tmp = Path(tempfile.mkdtemp(prefix="continuity-bench-"))
    try:
        a, b = tmp / "engine", tmp / "direct"
        for folder in (a, b):
            folder.mkdir()
            # Compiles every template the timed runs use (once per process and template folder), then forgets
            # what it wrote, so the timed runs find an empty outbox.
            through_engine(setup(folder, 1), db="warm.db")
            shutil.rmtree(folder / "outbox")
        sync = fsync_cost(tmp)
        engine_s, engine_cpu, ran = through_engine(setup(a, n), store_url=args.store_url)
        if args.store_url:
            print(f"store: {args.store_url.split('://', 1)[0]}")
        direct_s, direct_cpu = direct(setup(b, n), ran)
        print(f"steps: {ran}")
        for label, wall, cpu in (("through the engine (ledger, claim, record):", engine_s, engine_cpu),
                                 ("straight to the sink (no ledger):", direct_s, direct_cpu)):
            print(f"{label:<43} {wall * 1000:8.1f} ms  {wall / ran * 1e6:7.0f} µs/step   "
                  f"cpu {cpu * 1000:8.1f} ms {cpu / ran * 1e6:7.0f} µs/step")
        print(f"ratio engine/direct: cpu {engine_cpu / direct_cpu:.2f} (goal <= 1.2); wall {engine_s / direct_s:.2f}")
        print(f"direct per step: cpu {direct_cpu / ran * 1000:.2f} ms (goal <= 2 ms); "
              f"wall {direct_s / ran * 1000:.2f} ms; one write+fsync on this disk: {sync * 1000:.2f} ms")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
