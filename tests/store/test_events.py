"""The timeline: events of a situation, in the order they were added."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.store.conftest import NOW, Store, StoreFactory, add_situation


def test_events_read_back_in_the_order_they_were_added(store: Store) -> None:
    sid = add_situation(store)
    entries = [(NOW, "opened", "opened by anna: trunk down"),
               (NOW + timedelta(minutes=5), "eta", "ETA changed by bela to 12:00"),
               (NOW - timedelta(minutes=1), "note", "written late, with an earlier time"),  # id order, not time
               (NOW + timedelta(minutes=5), "closed", "closed by bela: fixed ✓")]
    with store.transaction():
        for at, kind, message in entries:
            store.add_event(sid, at, kind, message)

    events = store.events_for(sid)

    assert [(e.at, e.kind, e.message) for e in events] == entries
    assert all(e.situation_id == sid for e in events)
    ids = [e.id for e in events]
    assert ids == sorted(set(ids))
    assert all(e.at.tzinfo is not None for e in events)


def test_events_belong_to_their_situation(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    with store.transaction():
        store.add_event(a, NOW, "opened", "a1")
        store.add_event(b, NOW, "opened", "b1")
        store.add_event(a, NOW, "note", "a2")

    assert [e.message for e in store.events_for(a)] == ["a1", "a2"]
    assert [e.message for e in store.events_for(b)] == ["b1"]
    assert store.events_for(9999) == []


def test_an_event_of_an_unknown_situation_is_refused(store_factory: StoreFactory, store: Store) -> None:
    sid = add_situation(store)

    with pytest.raises(store_factory.constraint_errors), store.transaction():
        store.add_event(sid + 100, NOW, "opened", "nobody")

    assert store.events_for(sid + 100) == []


def test_events_of_a_rolled_back_transaction_are_gone(store: Store) -> None:
    sid = add_situation(store)
    with store.transaction():
        store.add_event(sid, NOW, "opened", "kept")

    with pytest.raises(RuntimeError), store.transaction():
        store.add_event(sid, NOW, "eta", "lost")
        raise RuntimeError("the command failed after writing")

    assert [e.message for e in store.events_for(sid)] == ["kept"]
