"""Claims under concurrency: two OS processes (multiprocessing, "spawn"), each with its own handle on the same
store, try to claim the same due step at the same moment, step after step. Every step is won by exactly one.

The children get the factory's `opener` (picklable) and open their own handle with it, so this holds for every
implementation in conftest.IMPLEMENTATIONS.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.store.conftest import NOW, Store, StoreFactory, add_situation, add_step

STEPS = 50
WORKERS = ("proc-a", "proc-b")


def _race(opener: Callable[..., Store], mode: str, ids: list[int], name: str, barrier: Any, out: Any) -> None:
    """In a child process: meet the other child before each step, then try to take it."""
    try:
        store = opener(busy_timeout=20)
        won: list[int] = []
        try:
            for row_id in ids:
                barrier.wait(30)
                if mode == "bare":  # the compare-and-set alone
                    if store.set_step(row_id, expect=("planned",), state="running", owner=name):
                        won.append(row_id)
                elif mode == "engine":  # as Engine.claim_due does it: read what is due, claim it, read it back
                    with store.transaction():
                        due = {r.id for r in store.due_steps(NOW + timedelta(minutes=1))}
                        if row_id in due and store.set_step(row_id, expect=("planned", "failed"), state="running",
                                                            owner=name, started_at=NOW, attempts=1):
                            row = store.get_step(row_id)
                            assert row is not None and row.owner == name, row
                            won.append(row_id)
                elif mode == "open":  # as Engine.open does it: open a situation unless one is open already
                    channel = f"ch{row_id}"
                    with store.transaction():
                        if store.find_open("outage", channel) is None:
                            store.insert_situation(kind="outage", channel=channel, playbook="p", source="cli",
                                                   opened_by=name, reason="down", eta=None, opened_at=NOW)
                            won.append(row_id)
                else:
                    raise ValueError(mode)
        finally:
            store.close()
        out.put((name, "ok", won))
    except BaseException:
        barrier.abort()  # do not leave the other child waiting
        out.put((name, "error", traceback.format_exc()))


def run_race(store_factory: StoreFactory, mode: str, ids: list[int]) -> dict[str, list[int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(WORKERS))
    out = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(store_factory.opener, mode, ids, name, barrier, out), daemon=True)
             for name in WORKERS]
    for proc in procs:
        proc.start()
    results: dict[str, list[int]] = {}
    errors: list[str] = []
    try:
        for _ in procs:
            try:
                name, status, value = out.get(timeout=60)
            except queue.Empty:
                pytest.fail(f"a racing process did not report within 60s (exit codes {[p.exitcode for p in procs]})")
            if status == "ok":
                results[name] = value
            else:
                errors.append(f"{name}:\n{value}")
    finally:
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert errors == [], "\n".join(errors)
    assert [p.exitcode for p in procs] == [0, 0]
    return results


def assert_one_winner_each(results: dict[str, list[int]], ids: list[int]) -> None:
    assert set(results) == set(WORKERS)
    a, b = (results[name] for name in WORKERS)
    assert not set(a) & set(b), f"won by both: {sorted(set(a) & set(b))}"
    assert sorted(a + b) == sorted(ids), "some steps were won by nobody"


@pytest.mark.parametrize("mode", ["bare", "engine"])
def test_every_step_is_claimed_by_exactly_one_process(store_factory: StoreFactory, store: Store, mode: str) -> None:
    sid = add_situation(store)
    ids = [add_step(store, sid, f"s{sid}/open/step{i}/1/mail", due_at=NOW - timedelta(seconds=i))
           for i in range(STEPS)]

    results = run_race(store_factory, mode, ids)

    assert_one_winner_each(results, ids)
    # the ledger agrees with what each process was told: the loser never overwrote the owner
    owners = {r.id: r.owner for r in store.running_steps()}
    assert owners == {row_id: name for name, won in results.items() for row_id in won}
    assert store.due_steps(NOW + timedelta(minutes=1)) == []


def test_one_situation_is_opened_when_two_processes_open_it_at_once(store_factory: StoreFactory,
                                                                   store: Store) -> None:
    ids = list(range(1, 21))

    results = run_race(store_factory, "open", ids)

    assert_one_winner_each(results, ids)
    opened = store.open_situations()
    assert sorted(s.channel for s in opened) == sorted(f"ch{i}" for i in ids)
    by_channel = {s.channel: s.opened_by for s in opened}
    assert by_channel == {f"ch{i}": name for name, won in results.items() for i in won}
