"""transaction(): all or nothing, nested calls join the outer one, and a store another handle holds for writing
makes a transaction wait, then give up with StoreBusy having written nothing."""

from __future__ import annotations

import threading
import time

import pytest

from continuity.errors import StoreBusy
from tests.store.conftest import NOW, Store, StoreFactory, add_situation, add_step, state_of


def test_a_transaction_commits_everything_together(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()

    with one.transaction():
        sid = one.insert_situation(kind="outage", channel="phone", playbook="p", source="cli", opened_by="anna",
                                   reason="down", eta=None, opened_at=NOW)
        one.add_event(sid, NOW, "opened", "opened")
        row_id = one.insert_step(situation_id=sid, key="k", phase="open", step_id="s", occurrence=1,
                                 action="notify", sink="mail", template="t", reversible=False, idempotent=True,
                                 every_s=None, due_at=NOW)

    assert two.get_situation(sid) is not None
    assert [e.kind for e in two.events_for(sid)] == ["opened"]
    assert row_id is not None and state_of(two, row_id) == "planned"


def test_an_error_inside_a_transaction_undoes_all_of_it(store: Store) -> None:
    sid = add_situation(store, reason="before")
    row_id = add_step(store, sid, "k")

    with pytest.raises(RuntimeError, match="boom"), store.transaction():
        store.update_situation(sid, reason="during")
        store.add_event(sid, NOW, "eta", "during")
        assert store.set_step(row_id, expect=("planned",), state="running", owner="p1")
        other = store.insert_situation(kind="outage", channel="email", playbook="p", source="cli", opened_by="x",
                                       reason="r", eta=None, opened_at=NOW)
        store.insert_step(situation_id=other, key="k2", phase="open", step_id="s", occurrence=1, action="a",
                          sink="m", template="t", reversible=False, idempotent=True, every_s=None, due_at=NOW)
        raise RuntimeError("boom")

    sit = store.get_situation(sid)
    assert sit is not None and sit.reason == "before"
    assert store.events_for(sid) == []
    assert state_of(store, row_id) == "planned"
    assert [s.id for s in store.open_situations()] == [sid]
    assert [r.key for r in store.pending_steps()] == ["k"]


def test_nested_transactions_join_the_outer_one(store: Store) -> None:
    sid = add_situation(store)

    with pytest.raises(RuntimeError), store.transaction():
        with store.transaction():
            store.add_event(sid, NOW, "inner", "written by the inner transaction")
        store.add_event(sid, NOW, "outer", "after the inner one ended")
        raise RuntimeError("the outer one fails")

    assert store.events_for(sid) == []  # the inner one was not committed on its own

    with store.transaction():
        with store.transaction():
            store.add_event(sid, NOW, "inner", "i")
        store.add_event(sid, NOW, "outer", "o")
    assert [e.kind for e in store.events_for(sid)] == ["inner", "outer"]


def test_the_handle_works_after_a_failed_transaction(store: Store) -> None:
    sid = add_situation(store)
    for _ in range(3):
        with pytest.raises(ValueError), store.transaction():
            store.add_event(sid, NOW, "x", "lost")
            raise ValueError

    with store.transaction():
        store.add_event(sid, NOW, "kept", "kept")

    assert [e.kind for e in store.events_for(sid)] == ["kept"]


def test_another_handle_does_not_see_uncommitted_writes_and_can_still_read(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()
    sid = add_situation(one, reason="committed")

    with one.transaction():
        one.update_situation(sid, reason="uncommitted")
        one.add_event(sid, NOW, "eta", "uncommitted")
        sit = two.get_situation(sid)  # a read is not blocked by the writer
        assert sit is not None and sit.reason == "committed"
        assert two.events_for(sid) == []

    sit = two.get_situation(sid)
    assert sit is not None and sit.reason == "uncommitted"


def test_a_savepoint_undoes_its_own_writes_only(store: Store) -> None:
    sid = add_situation(store)

    with store.transaction():
        store.add_event(sid, NOW, "before", "kept")
        with pytest.raises(RuntimeError), store.savepoint():
            store.add_event(sid, NOW, "inside", "undone")
            store.update_situation(sid, reason="undone")
            raise RuntimeError("one write of a batch fails")
        with store.savepoint():
            store.add_event(sid, NOW, "second", "kept")
        store.add_event(sid, NOW, "after", "kept")

    assert [e.kind for e in store.events_for(sid)] == ["before", "second", "after"]
    sit = store.get_situation(sid)
    assert sit is not None and sit.reason == "trunk down"


def test_a_savepoint_outside_a_transaction_is_one(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()
    sid = add_situation(one)

    with one.savepoint():
        one.add_event(sid, NOW, "saved", "committed when the savepoint ends")

    assert [e.kind for e in two.events_for(sid)] == ["saved"]
    with pytest.raises(RuntimeError), one.savepoint():
        one.add_event(sid, NOW, "lost", "rolled back")
        raise RuntimeError
    assert [e.kind for e in two.events_for(sid)] == ["saved"]


# a busy store -------------------------------------------------------------------------------------------------------


def test_a_store_held_too_long_raises_store_busy_and_writes_nothing(store_factory: StoreFactory) -> None:
    store = store_factory.open(busy_timeout=0.5)
    holder = store_factory.open()
    sid = add_situation(store, reason="before")
    ran = []

    with holder.transaction():
        holder.add_event(sid, NOW, "held", "the holder's write")
        started = time.monotonic()
        with pytest.raises(StoreBusy), store.transaction():
            ran.append("body")
            store.update_situation(sid, reason="must not land")
            store.add_event(sid, NOW, "lost", "must not land")
        waited = time.monotonic() - started

    assert 0.4 <= waited < 5, waited  # it waited about busy_timeout, then gave up
    assert ran == []  # nothing of the transaction ran...
    sit = store.get_situation(sid)
    assert sit is not None and sit.reason == "before"  # ...and nothing of it was written
    assert [e.kind for e in store.events_for(sid)] == ["held"]  # the holder's transaction is untouched
    # the handle is usable again once the store is free
    with store.transaction():
        store.add_event(sid, NOW, "after", "written once the store is free")
    assert [e.kind for e in holder.events_for(sid)] == ["held", "after"]


def test_a_send_mark_on_a_store_held_too_long_raises_store_busy(store_factory: StoreFactory) -> None:
    store = store_factory.open(busy_timeout=0.5)
    holder = store_factory.open()
    store.set_send_mark("k", "kept", "sent", NOW)

    with holder.transaction(), pytest.raises(StoreBusy):
        store.set_send_mark("k", "lost", "ending", NOW)

    assert store.send_marks("k") == {"kept": ("sent", "")}


def test_a_claim_on_a_store_held_too_long_raises_store_busy_and_claims_nothing(store_factory: StoreFactory) -> None:
    store = store_factory.open(busy_timeout=0.5)
    holder = store_factory.open()
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")

    with holder.transaction():
        with pytest.raises(StoreBusy), store.transaction():
            for row in store.due_steps(NOW):
                store.set_step(row.id, expect=("planned",), state="running", owner="blocked")
        assert holder.set_step(row_id, expect=("planned",), state="running", owner="holder")

    row = store.get_step(row_id)
    assert row is not None and (row.state, row.owner) == ("running", "holder")


def test_a_transaction_waits_for_a_store_held_briefly(store_factory: StoreFactory) -> None:
    store = store_factory.open(busy_timeout=10)
    holder = store_factory.open()
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")
    holding = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with holder.transaction():
                assert holder.set_step(row_id, expect=("planned",), state="running", owner="holder")
                holding.set()
                time.sleep(0.8)
        except BaseException as exc:  # reported below
            errors.append(exc)
            holding.set()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with store.transaction():
            waited = time.monotonic() - started
            # once in, it sees what the holder committed: its own claim loses
            claimed = store.set_step(row_id, expect=("planned",), state="running", owner="waiter")
            store.add_event(sid, NOW, "after", "after the holder")
    finally:
        thread.join(10)

    assert errors == []
    assert 0.5 <= waited < 5, waited
    assert claimed is False
    row = store.get_step(row_id)
    assert row is not None and row.owner == "holder"
    assert [e.kind for e in store.events_for(sid)] == ["after"]
