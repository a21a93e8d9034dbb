"""One durable commit per answer, and still exactly once: the claim and the final-dot mark are one
transaction taken after DATA's 354; an answer another process claimed meanwhile is dropped without its dot
(nothing delivered); `sent` marks ride the next transaction, in order, or commit on their own soon."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from continuity.autoreply.responder import LATER_MAX_DELAY, StoreWorker
from continuity.autoreply.smtppool import SmtpPool
from continuity.autoreply.state import AutoreplyState, Pending
from continuity.sinks.autoreply import AutoreplySettings
from continuity.store.sqlite import SqliteStore
from tests.autoreply.respkit import ScriptedRelay
from tests.conftest import NOW

ANSWER = (b"From: support@example.test\r\nTo: c1@example.test\r\nSubject: Re: parcel\r\n"
          b"Message-ID: <a1@example.test>\r\n\r\n.a line that starts with a dot\r\nWe are on it.\r\n")


@pytest.fixture
def relay() -> Iterator[ScriptedRelay]:
    server = ScriptedRelay(mode="swallow").start()
    try:
        yield server
    finally:
        server.stop()


def settings(port: int) -> AutoreplySettings:
    return AutoreplySettings(address="support@example.test", imap_host="127.0.0.1", imap_password=SecretStr("x"),
                             smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", timeout="5s")


def queued(path: Path, key: str) -> None:
    store = SqliteStore(path)
    with store.transaction():
        AutoreplyState(store, "box").record_queued(
            Pending(key=key, uid=1, recipient="c1@example.test", subject="parcel", in_reply_to=None,
                    references=(), language="en", situations=(), attempts=0),
            uidvalidity=1, received_at=NOW, now=NOW)
    store.close()


def test_the_claim_and_the_final_dot_mark_are_one_transaction_only_one_owner_wins(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    queued(db, "m1")
    a, b = SqliteStore(db), SqliteStore(db)  # two processes' connections
    try:
        assert AutoreplyState(a, "box").claim_to_end("m1", "proc-a", "<a>") is True
        assert AutoreplyState(b, "box").claim_to_end("m1", "proc-b", "<b>") is False
        row = b.autoreply_message("box", "m1")
        assert row is not None and (row.state, row.owner, row.ending, row.attempts) == ("sending", "proc-a", 1, 1)
        # A temporary failure before any claim: counted and kept as a claim and a requeue would (no-op if taken).
        AutoreplyState(b, "box").requeue_unclaimed("m1", "proc-b", "<b>", "451 slow down")
        row = b.autoreply_message("box", "m1")
        assert row is not None and (row.state, row.owner) == ("sending", "proc-a")
    finally:
        a.close()
        b.close()


def test_an_answer_not_ours_at_the_dot_is_dropped_without_it(relay: ScriptedRelay) -> None:
    pool = SmtpPool(settings(relay.port), 1)

    async def go() -> tuple[bool, bool]:
        async def no() -> bool:
            return False

        async def yes() -> bool:
            return True

        async with pool.lease() as lease:
            declined = await lease.send(ANSWER, "", "c1@example.test", no)
        async with pool.lease() as lease:
            sent = await lease.send(ANSWER, "", "c1@example.test", yes)
        await pool.aclose()
        return declined, sent

    declined, sent = asyncio.run(go())
    assert declined is False and sent is True
    assert len(relay.arrived) == 1 and pool.connections_opened == 2  # the declined one's connection was dropped
    assert b"\r\n.a line that starts with a dot\r\n" in relay.arrived[0]  # dot-stuffed on the wire, unstuffed


def test_later_writes_join_the_next_awaited_write_in_order(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db.sqlite").close()
    worker = StoreWorker(tmp_path / "db.sqlite", "box")
    state = AutoreplyState(worker.store, "box")
    order: list[str] = []
    commits = 0
    real = worker._apply

    def counting(ops: list) -> list:  # type: ignore[type-arg]
        nonlocal commits
        commits += 1
        return real(ops)

    worker._apply = counting  # type: ignore[method-assign]

    def later() -> None:
        order.append("later")
        state.note_error("box@example.test", "first", NOW)

    def awaited() -> None:
        order.append("awaited")
        state.note_ok("box@example.test", NOW)

    async def go() -> float:
        worker.write_later(later)
        await worker.write(awaited)
        alone = time.monotonic()
        worker.write_later(state.note_error, "box@example.test", "alone", NOW)
        while worker.store.autoreply_cursor("box").last_error != "alone":  # type: ignore[union-attr]
            await asyncio.sleep(0.005)
        return time.monotonic() - alone

    try:
        waited = asyncio.run(go())
        assert order == ["later", "awaited"] and commits == 2
        assert waited < LATER_MAX_DELAY + 2.0
    finally:
        worker.close()


def test_drain_commits_what_is_left(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "db.sqlite").close()
    worker = StoreWorker(tmp_path / "db.sqlite", "box")
    state = AutoreplyState(worker.store, "box")

    async def go() -> None:
        worker.write_later(state.note_error, "box@example.test", "last words", NOW)
        await worker.drain()

    try:
        asyncio.run(go())
        other = SqliteStore(tmp_path / "db.sqlite")
        cursor = other.autoreply_cursor("box")
        other.close()
        assert cursor is not None and cursor.last_error == "last words"
    finally:
        worker.close()
