"""Contract: the campaign registry in the store (continuity/store/campaigns.py) through the functions of
continuity.campaigns.store that load.py and phases.py call, for every implementation of
conftest.IMPLEMENTATIONS.

Public methods only, never SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from continuity.campaigns.store import (
    ACTIVE,
    CampaignRun,
    get_run,
    get_version,
    insert_run,
    insert_version,
    latest_run,
    runs,
    set_run,
    versions,
)
from tests.store.conftest import NOW, Store, StoreFactory, add_situation

SNAPSHOT: dict[str, Any] = {
    "name": "black-friday",
    "codes": [{"code": "BF26", "percent": 20}],
    "channels": ["phone", "email"],
    "faq": {"de": "Gilt der Rabatt auch für Gutscheine? – Nein.", "en": "Does it apply to vouchers? No."},
}


def version(store: Store, name: str = "black-friday", *, snapshot: dict[str, Any] | None = None,
            changes: list[str] | None = None, at: datetime = NOW, source: str = "campaign: …\n") -> int:
    with store.transaction():
        return insert_version(store, name=name, created_by="marketing", created_at=at, source=source,
                              snapshot=snapshot if snapshot is not None else SNAPSHOT, changes=changes or [])


def run(store: Store, name: str = "black-friday", *, number: int = 1, ver: int = 1,
        start: datetime = NOW + timedelta(days=10), days: int = 3, at: datetime = NOW) -> int:
    with store.transaction():
        return insert_run(store, name=name, run=number, version=ver, starts_at=start,
                          ends_at=start + timedelta(days=days), opens_at=start - timedelta(days=2),
                          created_by="marketing", created_at=at)


def the_run(store: Store, run_id: int) -> CampaignRun:
    found = get_run(store, run_id)
    assert found is not None
    return found


# versions ---------------------------------------------------------------------------------------------------


def test_registering_twice_gives_versions_one_and_two(store: Store) -> None:
    assert version(store) == 1
    changed = {**SNAPSHOT, "codes": [{"code": "BF26", "percent": 25}]}
    assert version(store, snapshot=changed, changes=["codes[0].percent: 20 → 25"], at=NOW + timedelta(hours=1),
                   source="v2 source") == 2
    assert version(store, "cyber-monday") == 1  # numbered per campaign name

    first, second = versions(store, "black-friday")
    assert (first.version, first.snapshot, first.changes, first.created_at) == (1, SNAPSHOT, [], NOW)
    assert (second.version, second.snapshot, second.changes, second.source, second.created_by) == (
        2, changed, ["codes[0].percent: 20 → 25"], "v2 source", "marketing")
    assert get_version(store, "black-friday", 2) == second
    assert [v.version for v in versions(store, "cyber-monday")] == [1]
    assert versions(store, "nothing") == []


def test_a_missing_version_is_none_in_the_store_and_an_error_in_the_wrapper(store: Store) -> None:
    version(store)
    assert store.get_campaign_version("black-friday", 2) is None
    with pytest.raises(AssertionError, match="no version 2"):
        get_version(store, "black-friday", 2)


def test_a_snapshot_comes_back_as_it_went_in(store: Store) -> None:
    nested = {"a": [1, 2.5, None, True], "ü": {"deep": ["x", {"y": "–"}]}, "empty": {}}
    version(store, snapshot=nested)
    got = get_version(store, "black-friday", 1)
    assert got.snapshot == nested
    got.snapshot["a"].append("changed")  # a record is detached from the store
    assert get_version(store, "black-friday", 1).snapshot == nested


def test_a_failed_registration_leaves_no_version(store: Store, store_factory: StoreFactory) -> None:
    """phases.register writes the version and the run in one transaction: a run that cannot be written
    takes the version with it."""
    version(store)
    run(store)
    with pytest.raises(store_factory.constraint_errors), store.transaction():
        insert_version(store, name="black-friday", created_by="x", created_at=NOW, source="", snapshot={},
                       changes=[])
        insert_run(store, name="black-friday", run=1, version=2, starts_at=NOW, ends_at=NOW, opens_at=NOW,
                   created_by="x", created_at=NOW)  # (name, run) exists
    assert [v.version for v in versions(store, "black-friday")] == [1]
    assert len(runs(store, include_finished=True)) == 1


# runs -------------------------------------------------------------------------------------------------------


def test_a_new_run_is_registered(store: Store) -> None:
    start = NOW + timedelta(days=10)
    run_id = run(store, start=start)
    r = the_run(store, run_id)
    assert (r.id, r.name, r.run, r.version, r.state, r.situation_id) == (run_id, "black-friday", 1, 1,
                                                                         "registered", None)
    assert (r.starts_at, r.ends_at, r.opens_at) == (start, start + timedelta(days=3), start - timedelta(days=2))
    assert (r.created_by, r.created_at, r.updated_at) == ("marketing", NOW, NOW)
    assert r.active and r.starts_at.tzinfo is not None
    assert get_run(store, run_id + 1000) is None


def test_run_numbers_are_unique_per_campaign(store: Store, store_factory: StoreFactory) -> None:
    run(store)
    run(store, "cyber-monday")  # another campaign's run 1
    with pytest.raises(store_factory.constraint_errors):
        run(store)


def test_latest_run_is_the_highest_run_number_in_any_state(store: Store) -> None:
    assert latest_run(store, "black-friday") is None
    first = run(store, number=1, start=NOW + timedelta(days=10))
    second = run(store, number=2, start=NOW + timedelta(days=375))
    with store.transaction():
        assert set_run(store, second, at=NOW, state="cancelled")
    latest = latest_run(store, "black-friday")
    assert latest is not None and (latest.id, latest.run, latest.state) == (second, 2, "cancelled")
    assert latest_run(store, "cyber-monday") is None
    assert the_run(store, first).run == 1


def test_runs_lists_active_runs_by_start(store: Store) -> None:
    late = run(store, "late", start=NOW + timedelta(days=30))
    early = run(store, "early", start=NOW + timedelta(days=5))
    same_start = run(store, "same-start", start=NOW + timedelta(days=5))
    ended = run(store, "ended", start=NOW + timedelta(days=1))
    cancelled = run(store, "cancelled", start=NOW + timedelta(days=2))
    briefed = run(store, "briefed", start=NOW + timedelta(days=3))
    live = run(store, "live", start=NOW + timedelta(days=4))
    with store.transaction():
        set_run(store, ended, at=NOW, state="ended")
        set_run(store, cancelled, at=NOW, state="cancelled")
        set_run(store, briefed, at=NOW, state="briefed")
        set_run(store, live, at=NOW, state="live")

    assert [r.id for r in runs(store)] == [briefed, live, early, same_start, late]
    assert all(r.state in ACTIVE and r.active for r in runs(store))
    everything = runs(store, include_finished=True)
    assert [r.id for r in everything] == [ended, cancelled, briefed, live, early, same_start, late]
    assert [r.active for r in everything][:2] == [False, False]
    assert [r.id for r in runs(store, name="early")] == [early]
    assert [r.id for r in runs(store, name="ended")] == []
    assert [r.id for r in runs(store, name="ended", include_finished=True)] == [ended]


def test_set_run_changes_the_named_fields_and_the_update_time(store: Store) -> None:
    sid = add_situation(store, kind="surge", channel="all")
    run_id = run(store)
    new_start = datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC)
    later = NOW + timedelta(minutes=7)
    with store.transaction():
        assert set_run(store, run_id, at=later, version=2, starts_at=new_start, ends_at=new_start + timedelta(days=1),
                       opens_at=new_start - timedelta(days=1), situation_id=sid, state="briefed") is True
    r = the_run(store, run_id)
    assert (r.version, r.starts_at, r.ends_at, r.opens_at, r.situation_id, r.state, r.updated_at) == (
        2, new_start, new_start + timedelta(days=1), new_start - timedelta(days=1), sid, "briefed", later)
    assert (r.created_at, r.created_by) == (NOW, "marketing")
    with store.transaction():
        assert set_run(store, run_id + 1000, at=later, state="live") is False  # no such run


def test_set_run_refuses_other_fields(store: Store) -> None:
    run_id = run(store)
    with pytest.raises(KeyError), store.transaction():
        set_run(store, run_id, at=NOW, name="renamed")
    with pytest.raises(KeyError), store.transaction():
        set_run(store, run_id, at=NOW, created_by="someone")
    assert the_run(store, run_id).name == "black-friday"


def test_set_run_with_expect_moves_a_run_once(store: Store) -> None:
    """phases.advance: two processes advancing the same clock brief (launch, end) a run once."""
    run_id = run(store)
    with store.transaction():
        assert set_run(store, run_id, at=NOW, expect=("registered",), state="briefed") is True
    with store.transaction():
        assert set_run(store, run_id, at=NOW + timedelta(hours=1), expect=("registered",), state="briefed") is False
    r = the_run(store, run_id)
    assert (r.state, r.updated_at) == ("briefed", NOW)  # a failed claim does not touch updated_at either
    with store.transaction():
        assert set_run(store, run_id, at=NOW, expect=("briefed", "live"), state="ended") is True
    assert the_run(store, run_id).state == "ended"


def test_two_handles_advance_a_run_once(store_factory: StoreFactory) -> None:
    a, b = store_factory.open(), store_factory.open()
    run_id = run(a)
    results = []
    for handle, name in ((a, "a"), (b, "b")):
        with handle.transaction():
            results.append((name, set_run(handle, run_id, at=NOW, expect=("registered",), state="briefed")))
    assert results == [("a", True), ("b", False)]
    assert the_run(b, run_id).state == "briefed"


def test_a_run_record_is_detached_from_the_store(store: Store) -> None:
    """phases.advance changes `run.state` on the record it holds: that is not a write."""
    run_id = run(store)
    r = the_run(store, run_id)
    r.state = "live"
    assert the_run(store, run_id).state == "registered"


def test_what_load_checks_against_other_campaigns(store: Store) -> None:
    """load.py reads the active runs and the snapshot of the version each one uses (codes, channels)."""
    version(store, "summer", snapshot={"codes": [{"code": "SUN"}], "channels": ["email"]})
    version(store, "summer", snapshot={"codes": [{"code": "SUN2"}], "channels": ["phone"]})
    run(store, "summer", ver=1)
    with store.transaction():
        set_run(store, runs(store, name="summer")[0].id, at=NOW, version=2)
    (other,) = runs(store)
    snap = get_version(store, other.name, other.version).snapshot
    assert ({c["code"] for c in snap["codes"]}, snap["channels"]) == ({"SUN2"}, ["phone"])
