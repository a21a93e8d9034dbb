"""The step ledger: planning is idempotent by key, due steps come oldest first, and `set_step(expect=...)` is a
compare-and-set on the state."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from continuity.store.records import STATES
from tests.store.conftest import NOW, Store, StoreFactory, add_situation, add_step, state_of

MIN = timedelta(minutes=1)


def plan(store: Store, situation_id: int, key: str, **over: Any) -> int | None:
    """insert_step as the engine calls it; None when the key exists already."""
    fields: dict[str, Any] = dict(phase="open", step_id="banner", occurrence=1, action="post", sink="web",
                                  template="outage/banner", reversible=True, idempotent=False, every_s=None,
                                  due_at=NOW)
    fields.update(over)
    with store.transaction():
        row_id: int | None = store.insert_step(situation_id=situation_id, key=key, **fields)
    return row_id


# planning -------------------------------------------------------------------------------------------------------


def test_an_inserted_step_reads_back_field_for_field(store: Store) -> None:
    sid = add_situation(store)
    target = add_step(store, sid, "s1/open/banner/1/web", reversible=True)
    row_id = plan(store, sid, "s1/undo/banner/web", phase="undo", step_id="banner", occurrence=2, action="unpost",
                  sink="web", template="outage/banner-off", reversible=False, idempotent=True, every_s=900,
                  due_at=NOW + 5 * MIN, undo_of=target)
    assert isinstance(row_id, int) and row_id != target

    row = store.get_step(row_id)

    assert row is not None
    assert (row.id, row.situation_id, row.key, row.phase, row.step_id, row.occurrence, row.action, row.sink,
            row.template) == (row_id, sid, "s1/undo/banner/web", "undo", "banner", 2, "unpost", "web",
                              "outage/banner-off")
    assert (row.reversible, row.idempotent, row.every_s, row.undo_of, row.due_at) == (
        False, True, 900, target, NOW + 5 * MIN)
    assert (row.state, row.attempts, row.last_error, row.next_retry_at, row.started_at, row.finished_at,
            row.owner, row.late, row.detail) == ("planned", 0, None, None, None, None, None, False, None)
    assert row.reversible is False and row.idempotent is True and row.late is False  # bools, not 0/1


@pytest.mark.parametrize("state", STATES)
def test_a_step_can_be_planned_in_any_ledger_state(store: Store, state: str) -> None:
    sid = add_situation(store)

    row_id = plan(store, sid, f"k/{state}", state=state)

    assert row_id is not None and state_of(store, row_id) == state


def test_planning_the_same_key_twice_is_harmless(store: Store) -> None:
    sid = add_situation(store)
    first = plan(store, sid, "s1/open/banner/1/web", template="first", due_at=NOW)
    assert first is not None

    again = plan(store, sid, "s1/open/banner/1/web", template="second", due_at=NOW + 60 * MIN, state="done")

    assert again is None
    rows = store.steps_for(sid)
    assert [(r.id, r.template, r.due_at, r.state) for r in rows] == [(first, "first", NOW, "planned")]


def test_the_key_is_unique_across_situations(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    first = plan(store, a, "shared-key")

    assert plan(store, b, "shared-key") is None
    assert [r.id for r in store.steps_for(a)] == [first] and store.steps_for(b) == []


def test_planning_twice_after_a_claim_leaves_the_claimed_row_alone(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")
    with store.transaction():
        assert store.set_step(row_id, expect=("planned",), state="running", owner="p1")

    assert plan(store, sid, "k") is None
    row = store.get_step(row_id)
    assert row is not None and (row.state, row.owner) == ("running", "p1")


def test_a_step_of_an_unknown_situation_is_refused(store_factory: StoreFactory, store: Store) -> None:
    sid = add_situation(store)

    with pytest.raises(store_factory.constraint_errors):
        plan(store, sid + 100, "orphan")

    assert store.steps_for(sid + 100) == [] and store.pending_steps() == []


def test_an_unknown_step_is_none(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")

    assert store.get_step(row_id + 1000) is None


# reading the ledger -----------------------------------------------------------------------------------------------


def test_steps_for_is_one_situation_by_due_time_then_id(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    late = add_step(store, a, "a/late", due_at=NOW + 10 * MIN)
    early = add_step(store, a, "a/early", due_at=NOW - 10 * MIN)
    add_step(store, b, "b/x", due_at=NOW)
    same1 = add_step(store, a, "a/same1", due_at=NOW)
    same2 = add_step(store, a, "a/same2", due_at=NOW)

    assert [r.id for r in store.steps_for(a)] == [early, same1, same2, late]
    assert [r.key for r in store.steps_for(b)] == ["b/x"]
    assert store.steps_for(9999) == []


def test_due_steps_are_the_planned_ones_due_and_the_failed_ones_whose_retry_is_due(store: Store) -> None:
    sid = add_situation(store)
    ids = {}
    for key, due in (("past", NOW - 5 * MIN), ("now", NOW), ("future", NOW + MIN), ("older", NOW - 9 * MIN)):
        ids[key] = add_step(store, sid, key, due_at=due)
    for key, retry in (("retry-due", NOW - 2 * MIN), ("retry-later", NOW + MIN), ("failed-for-good", None)):
        ids[key] = add_step(store, sid, key, due_at=NOW - 30 * MIN)
        with store.transaction():
            assert store.set_step(ids[key], state="failed", next_retry_at=retry, attempts=1)
    for key, state in (("running", "running"), ("done", "done"), ("cancelled", "cancelled"),
                       ("uncertain", "uncertain"), ("skipped", "skipped"), ("undone", "undone")):
        ids[key] = add_step(store, sid, key, due_at=NOW - 20 * MIN)
        with store.transaction():
            assert store.set_step(ids[key], state=state)

    due = store.due_steps(NOW)

    # ordered by due time then id: a failed row sorts by its due_at, not by its retry time
    assert [r.key for r in due] == ["retry-due", "older", "past", "now"]
    assert [r.key for r in store.due_steps(NOW - 6 * MIN)] == ["older"]  # the retry is not due yet then
    assert [r.key for r in store.due_steps(NOW + 2 * MIN)] == ["retry-due", "retry-later", "older", "past", "now",
                                                               "future"]


def test_due_steps_can_be_limited_to_some_situations(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    c = add_situation(store, channel="chat")
    add_step(store, a, "a", due_at=NOW - 3 * MIN)
    add_step(store, b, "b", due_at=NOW - 2 * MIN)
    add_step(store, c, "c", due_at=NOW - 1 * MIN)

    assert [r.key for r in store.due_steps(NOW)] == ["a", "b", "c"]
    assert [r.key for r in store.due_steps(NOW, [a, c])] == ["a", "c"]
    assert [r.key for r in store.due_steps(NOW, (b,))] == ["b"]
    assert [r.key for r in store.due_steps(NOW, [9999])] == []
    assert store.due_steps(NOW, []) == []  # no situation: nothing, not everything


def test_an_undo_waits_while_the_step_it_switches_off_is_running(store: Store) -> None:
    sid = add_situation(store)
    banner = add_step(store, sid, "s/open/banner", due_at=NOW - 10 * MIN, reversible=True)
    undo = add_step(store, sid, "s/undo/banner", phase="undo", due_at=NOW - 5 * MIN, undo_of=banner)

    with store.transaction():
        assert store.set_step(banner, expect=("planned",), state="running", owner="p1")
    assert store.due_steps(NOW) == []

    with store.transaction():
        assert store.set_step(banner, expect=("running",), state="done", owner=None)
    assert [r.id for r in store.due_steps(NOW)] == [undo]


def test_next_due_is_the_earliest_planned_due_time_or_retry_time(store: Store) -> None:
    assert store.next_due() is None
    sid = add_situation(store)
    a = add_step(store, sid, "a", due_at=NOW + 10 * MIN)
    assert store.next_due() == NOW + 10 * MIN
    add_step(store, sid, "b", due_at=NOW + 20 * MIN)
    c = add_step(store, sid, "c", due_at=NOW - 60 * MIN)
    with store.transaction():
        assert store.set_step(c, state="failed", next_retry_at=NOW + 3 * MIN)
    assert store.next_due() == NOW + 3 * MIN
    with store.transaction():
        assert store.set_step(c, state="failed", next_retry_at=None)  # failed for good: nothing to wait for
        assert store.set_step(a, state="done")
    assert store.next_due() == NOW + 20 * MIN


def test_pending_and_running_steps(store: Store) -> None:
    a = add_situation(store, channel="phone")
    b = add_situation(store, channel="email")
    planned_future = add_step(store, a, "p1", due_at=NOW + 60 * MIN)
    planned_b = add_step(store, b, "p2")
    retrying = add_step(store, a, "r")
    failed = add_step(store, a, "f")
    running_b = add_step(store, b, "run1")
    running_a = add_step(store, a, "run2")
    done = add_step(store, a, "d")
    with store.transaction():
        store.set_step(retrying, state="failed", next_retry_at=NOW + MIN)
        store.set_step(failed, state="failed", next_retry_at=None)
        store.set_step(running_b, state="running", owner="p1")
        store.set_step(running_a, state="running", owner="p2")
        store.set_step(done, state="done")

    assert [r.id for r in store.pending_steps()] == [planned_future, planned_b, retrying]
    assert [(r.id, r.owner) for r in store.running_steps()] == [(running_b, "p1"), (running_a, "p2")]


# set_step ---------------------------------------------------------------------------------------------------------


def test_set_step_writes_every_field_it_allows(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")
    started = NOW + timedelta(seconds=1, microseconds=250)

    with store.transaction():
        assert store.set_step(row_id, state="failed", attempts=3, last_error="503 from the chat API",
                              next_retry_at=NOW + 2 * MIN, started_at=started, finished_at=NOW + 3 * MIN,
                              owner="host:123", late=True, detail="retrying", due_at=NOW + 7 * MIN)

    row = store.get_step(row_id)
    assert row is not None
    assert (row.state, row.attempts, row.last_error, row.next_retry_at, row.started_at, row.finished_at, row.owner,
            row.late, row.detail, row.due_at) == ("failed", 3, "503 from the chat API", NOW + 2 * MIN, started,
                                                  NOW + 3 * MIN, "host:123", True, "retrying", NOW + 7 * MIN)
    assert row.awaiting_retry

    with store.transaction():
        assert store.set_step(row_id, next_retry_at=None, owner=None, late=False, last_error=None)
    row = store.get_step(row_id)
    assert row is not None
    assert (row.next_retry_at, row.owner, row.late, row.last_error, row.attempts) == (None, None, False, None, 3)
    assert not row.awaiting_retry


def test_set_step_changes_one_row_only(store: Store) -> None:
    sid = add_situation(store)
    a = add_step(store, sid, "a")
    b = add_step(store, sid, "b")

    with store.transaction():
        assert store.set_step(a, state="running", owner="p1", attempts=1)

    row_b = store.get_step(b)
    assert row_b is not None and (row_b.state, row_b.owner, row_b.attempts) == ("planned", None, 0)


def test_set_step_refuses_unknown_fields_and_changes_nothing(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")

    with pytest.raises(KeyError), store.transaction():
        store.set_step(row_id, state="running", key="other")

    row = store.get_step(row_id)
    assert row is not None and (row.state, row.key) == ("planned", "k")


def test_set_step_of_an_unknown_row_is_false(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")

    with store.transaction():
        assert store.set_step(row_id + 1000, state="done") is False
        assert store.set_step(row_id + 1000, expect=("planned",), state="done") is False
    assert state_of(store, row_id) == "planned"


EXPECTS = [("planned",), ("failed",), ("running",), ("planned", "failed"), ("done", "uncertain"),
           ("running", "planned", "failed")]


@pytest.mark.parametrize(("current", "expect"), list(itertools.product(STATES, EXPECTS)),
                         ids=lambda v: v if isinstance(v, str) else "|".join(v))
def test_set_step_with_expect_is_a_compare_and_set(store: Store, current: str, expect: tuple[str, ...]) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k", state=current)

    with store.transaction():
        changed = store.set_step(row_id, expect=expect, state="running", owner="winner", attempts=1,
                                 started_at=NOW, detail="claimed")

    row = store.get_step(row_id)
    assert row is not None
    assert changed is (current in expect)
    if changed:
        assert (row.state, row.owner, row.attempts, row.started_at, row.detail) == ("running", "winner", 1, NOW,
                                                                                      "claimed")
    else:  # not one field written
        assert (row.state, row.owner, row.attempts, row.started_at, row.detail) == (current, None, 0, None, None)


def test_a_claim_succeeds_once(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")

    with store.transaction():
        first = store.set_step(row_id, expect=("planned", "failed"), state="running", owner="one")
    with store.transaction():
        second = store.set_step(row_id, expect=("planned", "failed"), state="running", owner="two")

    assert (first, second) == (True, False)
    row = store.get_step(row_id)
    assert row is not None and row.owner == "one"


def test_a_claim_through_another_handle_sees_the_first_claim(store_factory: StoreFactory) -> None:
    one, two = store_factory.open(), store_factory.open()
    sid = add_situation(one)
    row_id = add_step(one, sid, "k")
    assert [r.id for r in two.due_steps(NOW)] == [row_id]  # two saw it due...

    with one.transaction():
        assert one.set_step(row_id, expect=("planned",), state="running", owner="one")
    with two.transaction():  # ...but claims it after one did
        assert not two.set_step(row_id, expect=("planned",), state="running", owner="two")

    row = two.get_step(row_id)
    assert row is not None and (row.state, row.owner) == ("running", "one")
    assert two.due_steps(NOW) == []


def test_set_step_without_expect_writes_whatever_the_state(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k", state="done")

    with store.transaction():
        assert store.set_step(row_id, state="undone") is True

    assert state_of(store, row_id) == "undone"


def test_an_empty_expect_matches_no_state(store: Store) -> None:
    """`expect=()` names no state the row may be in, so the compare-and-set cannot succeed. (A guard built from
    data, such as every state allowed to move to the target, can come out empty: it must not become a blind
    write.) FAILS TODAY: SqliteStore.set_step tests `if expect:`, so an empty expect writes unconditionally."""
    sid = add_situation(store)
    row_id = add_step(store, sid, "k", state="done")

    with store.transaction():
        changed = store.set_step(row_id, expect=(), state="running", owner="intruder")

    row = store.get_step(row_id)
    assert row is not None
    assert (changed, row.state, row.owner) == (False, "done", None)


def test_a_step_record_is_detached_from_the_store(store: Store) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")
    row = store.get_step(row_id)
    assert row is not None

    row.state, row.owner = "running", "in memory only"

    assert [r.id for r in store.due_steps(NOW)] == [row_id]
    assert state_of(store, row_id) == "planned"
