"""`reopen()`: a second, independent handle on the same store (the auto-responder's worker thread uses one),
on every implementation."""

from __future__ import annotations

from tests.store.conftest import Store, add_situation


def test_a_reopened_handle_sees_the_same_store_and_is_independent(store: Store) -> None:
    sid = add_situation(store)
    other = store.reopen()
    try:
        assert other is not store
        sit = other.get_situation(sid)
        assert sit is not None and sit.reason == "trunk down"
        with other.transaction():
            other.add_event(sid, sit.opened_at, "note", "from the second handle")
        assert [e.message for e in store.events_for(sid)] == ["from the second handle"]
    finally:
        other.close()
    assert store.get_situation(sid) is not None  # closing the second handle left the first open
