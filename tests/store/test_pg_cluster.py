"""The cluster's seat on a real PostgreSQL: one leader at a time, the epoch rising with each new one, and the
fence refusing every write of a leader that lost its lock, whether it was killed, frozen or cut off."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from continuity.errors import Fenced, StoreUnavailable
from continuity.store.pg_cluster import Leadership, read_lease, read_nodes
from continuity.store.postgres import WRITE_LOCK, PostgresStore
from tests.store.pgserver import drop_database, fresh_database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def url() -> Iterator[str]:
    u = fresh_database()
    yield u
    drop_database(u)


def seat(url: str, store: PostgresStore, node: str, failover: float = 2.0) -> Leadership:
    return Leadership(url, store.fence, node=node, vantage=node, version="test", failover=failover,
                      write_lock=WRITE_LOCK)


def open_situation(store: PostgresStore, channel: str) -> int:
    with store.transaction():
        return store.insert_situation(kind="outage", channel=channel, playbook="p", source="daemon",
                                      opened_by="daemon", reason="r", eta=None, opened_at=NOW)


def test_one_leader_and_the_epoch_rises_with_each(url: str) -> None:
    a_store, b_store = PostgresStore(url), PostgresStore(url)
    a, b = seat(url, a_store, "a"), seat(url, b_store, "b")
    try:
        assert a.poll() == 1
        assert b.poll() is None  # the lock is held: b follows
        assert a.poll() == 1  # renewing keeps the epoch
        lease = read_lease(a_store.conn)
        assert lease is not None and lease.leader == "a" and lease.held and lease.epoch == 1
        assert [n.name for n in read_nodes(a_store.conn)] == ["a", "b"]
        open_situation(a_store, "phone")  # the leader's writes go through
        a.release()  # a clean stop: b leads at its next poll, under a new epoch
        assert b.poll() == 2
        with pytest.raises(Fenced):
            open_situation(a_store, "email")  # a gave the lead up: its handle records nothing
        open_situation(b_store, "email")
    finally:
        for s in (a, b):
            s.release()
        a_store.close()
        b_store.close()


def test_a_killed_leaders_lock_goes_at_once_and_its_writes_are_fenced(url: str) -> None:
    a_store, b_store = PostgresStore(url), PostgresStore(url)
    a, b = seat(url, a_store, "a"), seat(url, b_store, "b")
    try:
        assert a.poll() == 1
        assert a.conn is not None
        a.conn.close()  # what a SIGKILL does to the lock's session: the socket closes, the lock is gone
        assert b.poll() == 2
        with pytest.raises(Fenced, match="epoch 1, the lease is at 2"):
            open_situation(a_store, "phone")  # a has not noticed yet: the database refuses it anyway
        assert a.poll() is None  # and at its next poll it knows
        with pytest.raises(Fenced):
            open_situation(a_store, "phone")
    finally:
        for s in (a, b):
            s.release()
        a_store.close()
        b_store.close()


def test_a_frozen_leader_is_unseated_after_failover_and_fenced(url: str) -> None:
    """A paused VM keeps its session (and the lock) alive but stops renewing: after `failover` the next node
    ends that session and leads; the frozen one, thawed, can record nothing."""
    a_store, b_store = PostgresStore(url), PostgresStore(url)
    a, b = seat(url, a_store, "a", failover=2.0), seat(url, b_store, "b", failover=2.0)
    try:
        assert a.poll() == 1
        assert b.poll() is None
        time.sleep(1.0)
        assert b.poll() is None  # one second of silence is not enough
        time.sleep(1.6)
        b.poll()  # ends a's session: a's lock goes with it
        deadline = time.monotonic() + 5
        epoch = None
        while epoch is None and time.monotonic() < deadline:
            epoch = b.poll()
            time.sleep(0.1)
        assert epoch == 2
        with pytest.raises(Fenced):
            open_situation(a_store, "phone")
        assert a.poll() is None  # its lock connection was ended: it follows now
    finally:
        for s in (a, b):
            s.release()
        a_store.close()
        b_store.close()


def test_a_write_that_started_before_the_new_epoch_commits_before_it(url: str) -> None:
    """The epoch's raise waits for the store's write lock, so a write the old leader began under its epoch
    finishes first and nothing it does can land after the new leader's first decision."""
    a_store, b_store = PostgresStore(url), PostgresStore(url)
    a, b = seat(url, a_store, "a"), seat(url, b_store, "b")
    try:
        assert a.poll() == 1
        with a_store.transaction():
            a_store.insert_situation(kind="outage", channel="phone", playbook="p", source="daemon",
                                     opened_by="daemon", reason="r", eta=None, opened_at=NOW)
            assert a.conn is not None
            a.conn.close()  # a's lock goes while its write transaction is open
            started = time.monotonic()
            import threading

            got: list[int | None] = []
            t = threading.Thread(target=lambda: got.append(b.poll()))
            t.start()
            time.sleep(0.5)
            assert not got  # b took the lock but waits for the write lock to raise the epoch
        t.join(timeout=5)
        assert got == [2] and time.monotonic() - started >= 0.5
        assert b_store.find_open("outage", "phone") is not None  # a's write landed, before epoch 2
    finally:
        for s in (a, b):
            s.release()
        a_store.close()
        b_store.close()


def test_a_store_handle_reconnects_after_its_connection_is_ended(url: str) -> None:
    store = PostgresStore(url)
    try:
        open_situation(store, "phone")
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid()")
        time.sleep(0.2)
        with pytest.raises(StoreUnavailable, match="unreachable"):  # the first use finds the connection gone
            store.open_situations()
        assert [s.channel for s in store.open_situations()] == ["phone"]  # the next one reconnects
    finally:
        store.close()
