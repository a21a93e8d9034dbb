"""Situations: insert, read back, update, close, list open and recent ones, one open per kind and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tests.store.conftest import NOW, Store, StoreFactory, add_situation

BUDAPEST = timezone(timedelta(hours=1))


def test_an_inserted_situation_reads_back_field_for_field(store: Store) -> None:
    eta = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=BUDAPEST)
    sid = add_situation(store, kind="outage", channel="phone", playbook="outage-phone", source="daemon",
                        opened_by="health:phone", reason="trunk down", eta=eta, opened_at=NOW,
                        data={"also_staff": ["ops"], "n": 3, "nested": {"a": None}})

    sit = store.get_situation(sid)

    assert sit is not None
    assert (sit.id, sit.kind, sit.channel, sit.playbook, sit.state, sit.source, sit.opened_by, sit.reason) == (
        sid, "outage", "phone", "outage-phone", "open", "daemon", "health:phone", "trunk down")
    assert sit.eta == eta and sit.eta.tzinfo is not None  # the same instant, to the microsecond, aware
    assert sit.opened_at == NOW and sit.opened_at.tzinfo is not None
    assert (sit.note, sit.revision, sit.closed_at, sit.closed_by) == (None, 0, None, None)
    assert sit.data == {"also_staff": ["ops"], "n": 3, "nested": {"a": None}}
    assert sit.is_open


def test_no_eta_and_no_data_read_back_as_none_and_empty(store: Store) -> None:
    sid = add_situation(store, eta=None, data=None)

    sit = store.get_situation(sid)

    assert sit is not None and sit.eta is None and sit.data == {}


def test_ids_are_distinct_and_increasing(store: Store) -> None:
    ids = [add_situation(store, channel=f"ch{i}") for i in range(5)]

    assert ids == sorted(set(ids))


def test_an_unknown_situation_is_none(store: Store) -> None:
    add_situation(store)

    assert store.get_situation(9999) is None


def test_find_open_matches_kind_and_channel(store: Store) -> None:
    phone = add_situation(store, kind="outage", channel="phone")
    email = add_situation(store, kind="outage", channel="email")
    maint = add_situation(store, kind="maintenance", channel="phone")

    found = store.find_open("outage", "phone")
    assert found is not None and found.id == phone
    found = store.find_open("maintenance", "phone")
    assert found is not None and found.id == maint
    found = store.find_open("outage", "email")
    assert found is not None and found.id == email
    assert store.find_open("outage", "chat") is None
    assert store.find_open("campaign", "email") is None


def test_update_changes_the_named_fields_only(store: Store) -> None:
    sid = add_situation(store, reason="trunk down", eta=NOW + timedelta(hours=2), data={"a": 1})
    new_eta = NOW + timedelta(hours=5, microseconds=7)

    with store.transaction():
        store.update_situation(sid, reason="carrier says fibre cut", eta=new_eta, note="ticket 42",
                               data={"a": 2, "unsure": [5]})

    sit = store.get_situation(sid)
    assert sit is not None
    assert (sit.reason, sit.eta, sit.note, sit.data) == ("carrier says fibre cut", new_eta, "ticket 42",
                                                         {"a": 2, "unsure": [5]})
    assert (sit.state, sit.opened_by, sit.opened_at, sit.revision, sit.kind, sit.channel) == (
        "open", "anna", NOW, 0, "outage", "phone")


def test_eta_can_be_cleared(store: Store) -> None:
    sid = add_situation(store, eta=NOW + timedelta(hours=1))

    with store.transaction():
        store.update_situation(sid, eta=None)

    sit = store.get_situation(sid)
    assert sit is not None and sit.eta is None


def test_revision_counts_up(store: Store) -> None:
    sid = add_situation(store)

    for expected in (1, 2, 3):
        sit = store.get_situation(sid)
        assert sit is not None
        with store.transaction():
            store.update_situation(sid, revision=sit.revision + 1)
        sit = store.get_situation(sid)
        assert sit is not None and sit.revision == expected


def test_update_of_one_situation_leaves_the_others_alone(store: Store) -> None:
    a = add_situation(store, channel="phone", reason="a")
    b = add_situation(store, channel="email", reason="b")

    with store.transaction():
        store.update_situation(a, reason="a2", revision=4)

    sit_b = store.get_situation(b)
    assert sit_b is not None and (sit_b.reason, sit_b.revision) == ("b", 0)


def test_update_refuses_unknown_fields_and_changes_nothing(store: Store) -> None:
    sid = add_situation(store, reason="trunk down")

    with pytest.raises(KeyError), store.transaction():
        store.update_situation(sid, reason="changed", channel="email")

    sit = store.get_situation(sid)
    assert sit is not None and (sit.reason, sit.channel) == ("trunk down", "phone")


def test_closing_a_situation(store: Store) -> None:
    sid = add_situation(store)
    closed_at = NOW + timedelta(minutes=45)

    with store.transaction():
        store.update_situation(sid, state="closed", closed_at=closed_at, closed_by="bela", note="fixed")

    sit = store.get_situation(sid)
    assert sit is not None
    assert (sit.state, sit.closed_at, sit.closed_by, sit.note, sit.is_open) == ("closed", closed_at, "bela",
                                                                                  "fixed", False)
    assert store.find_open("outage", "phone") is None
    assert store.open_situations() == []


def test_open_situations_lists_the_open_ones_by_id(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    c = add_situation(store, channel="chat")
    with store.transaction():
        store.update_situation(b, state="closed", closed_at=NOW, closed_by="bela")

    assert [s.id for s in store.open_situations()] == [a, c]
    assert all(s.state == "open" for s in store.open_situations())


def test_one_open_situation_per_kind_and_channel(store_factory: StoreFactory, store: Store) -> None:
    first = add_situation(store, kind="outage", channel="phone", reason="first")

    with pytest.raises(store_factory.constraint_errors):
        add_situation(store, kind="outage", channel="phone", reason="second")

    assert [s.id for s in store.open_situations()] == [first]
    found = store.find_open("outage", "phone")
    assert found is not None and found.reason == "first"
    # another kind on the same channel is another situation
    other = add_situation(store, kind="maintenance", channel="phone")
    assert {s.id for s in store.open_situations()} == {first, other}


def test_a_closed_situation_makes_room_for_a_new_one(store: Store) -> None:
    first = add_situation(store)
    with store.transaction():
        store.update_situation(first, state="closed", closed_at=NOW, closed_by="bela")

    second = add_situation(store, reason="again")

    assert second != first
    found = store.find_open("outage", "phone")
    assert found is not None and found.id == second
    old = store.get_situation(first)
    assert old is not None and old.state == "closed"


def test_situations_since_has_the_recent_and_the_open_ones(store: Store) -> None:
    day = timedelta(days=1)
    old_closed = add_situation(store, channel="a", opened_at=NOW - 10 * day)
    old_closed_late = add_situation(store, channel="b", opened_at=NOW - 10 * day)
    old_open = add_situation(store, channel="c", opened_at=NOW - 10 * day)
    new = add_situation(store, channel="d", opened_at=NOW)
    with store.transaction():
        store.update_situation(old_closed, state="closed", closed_at=NOW - 9 * day, closed_by="x")
        store.update_situation(old_closed_late, state="closed", closed_at=NOW - day, closed_by="x")
        store.update_situation(new, state="closed", closed_at=NOW + day, closed_by="x")

    since = store.situations_since(NOW - 2 * day)

    assert [s.id for s in since] == [old_closed_late, old_open, new]
    # the boundary is inclusive
    assert [s.id for s in store.situations_since(NOW)] == [old_open, new]
    assert [s.id for s in store.situations_since(NOW + 2 * day)] == [old_open]


def test_a_written_situation_is_seen_by_another_handle(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()

    sid = add_situation(one, reason="from one")

    sit = two.get_situation(sid)
    assert sit is not None and sit.reason == "from one"
    assert [s.id for s in two.open_situations()] == [sid]
    with two.transaction():
        two.update_situation(sid, reason="from two")
    sit = one.get_situation(sid)
    assert sit is not None and sit.reason == "from two"


def test_datetimes_come_back_in_utc_with_the_same_instant(store: Store) -> None:
    opened = datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=BUDAPEST)
    sid = add_situation(store, opened_at=opened, eta=None)

    sit = store.get_situation(sid)

    assert sit is not None and sit.opened_at == opened
    assert sit.opened_at.utcoffset() == timedelta(0) and sit.opened_at.astimezone(UTC) == opened


def test_a_record_is_detached_from_the_store(store: Store) -> None:
    sid = add_situation(store, reason="trunk down", data={"unsure": [1]})
    sit = store.get_situation(sid)
    assert sit is not None

    sit.reason = "changed in memory"
    sit.data["unsure"].append(2)
    sit.data["new"] = True

    again = store.get_situation(sid)
    assert again is not None and (again.reason, again.data) == ("trunk down", {"unsure": [1]})
