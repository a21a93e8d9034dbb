"""Maintenance windows: scheduled, listed by start time, moved through their states, linked to a situation."""

from __future__ import annotations

from datetime import timedelta

from tests.store.conftest import NOW, Store, add_situation

HOUR = timedelta(hours=1)


def window(store: Store, channel: str = "phone", starts_in: timedelta = HOUR, length: timedelta = 2 * HOUR,
           reason: str = "PBX firmware") -> int:
    with store.transaction():
        wid: int = store.insert_maintenance(channel=channel, starts_at=NOW + starts_in,
                                            ends_at=NOW + starts_in + length, notice_s=3600, reason=reason,
                                            created_by="anna", created_at=NOW)
    return wid


def test_a_window_reads_back_field_for_field(store: Store) -> None:
    wid = window(store, channel="phone", starts_in=HOUR, length=2 * HOUR, reason="PBX firmware")

    win = store.get_maintenance(wid)

    assert win is not None
    assert (win.id, win.channel, win.starts_at, win.ends_at, win.notice_s, win.reason, win.state, win.situation_id,
            win.created_by, win.created_at) == (wid, "phone", NOW + HOUR, NOW + 3 * HOUR, 3600, "PBX firmware",
                                                "scheduled", None, "anna", NOW)


def test_an_unknown_window_is_none(store: Store) -> None:
    wid = window(store)

    assert store.get_maintenance(wid + 1000) is None


def test_windows_are_listed_by_start_time_and_ended_ones_only_on_request(store: Store) -> None:
    late = window(store, channel="phone", starts_in=5 * HOUR)
    early = window(store, channel="email", starts_in=HOUR)
    done = window(store, channel="chat", starts_in=-10 * HOUR)
    cancelled = window(store, channel="web", starts_in=2 * HOUR)
    active = window(store, channel="sms", starts_in=-HOUR)
    announced = window(store, channel="fax", starts_in=3 * HOUR)
    with store.transaction():
        store.set_maintenance(done, state="done")
        store.set_maintenance(cancelled, state="cancelled")
        store.set_maintenance(active, state="active")
        store.set_maintenance(announced, state="announced")

    assert [w.id for w in store.maintenance()] == [active, early, announced, late]
    assert [w.id for w in store.maintenance(include_ended=True)] == [done, active, early, cancelled, announced, late]


def test_a_window_is_linked_to_its_situation_and_keeps_the_link(store: Store) -> None:
    wid = window(store)
    sid = add_situation(store, kind="maintenance", channel="phone")

    with store.transaction():
        store.set_maintenance(wid, state="announced", situation_id=sid)
    win = store.get_maintenance(wid)
    assert win is not None and (win.state, win.situation_id) == ("announced", sid)

    with store.transaction():
        store.set_maintenance(wid, state="active")  # no situation given: the link stays
    win = store.get_maintenance(wid)
    assert win is not None and (win.state, win.situation_id) == ("active", sid)


def test_setting_one_window_leaves_the_others_alone(store: Store) -> None:
    a = window(store, channel="phone")
    b = window(store, channel="email")

    with store.transaction():
        store.set_maintenance(a, state="cancelled")

    win_b = store.get_maintenance(b)
    assert win_b is not None and win_b.state == "scheduled"
    assert [w.id for w in store.maintenance()] == [b]
