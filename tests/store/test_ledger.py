"""The ledger's state machine (records.TRANSITIONS) through the store: every allowed move can be made as a
compare-and-set from its source state, and a move guarded by the table is refused from any other state."""

from __future__ import annotations

from collections import deque

import pytest

from continuity.store.records import FINAL, STATES, TRANSITIONS, can_move
from tests.store.conftest import Store, add_situation, add_step, state_of

ALLOWED = sorted((src, dst) for src, dsts in TRANSITIONS.items() for dst in dsts)
REFUSED = sorted((src, dst) for src in STATES for dst in STATES if src != dst and not can_move(src, dst))


def path_to(target: str) -> list[str]:
    """The shortest list of states from 'planned' to `target` along allowed moves."""
    seen = {"planned": ["planned"]}
    todo = deque(["planned"])
    while todo:
        state = todo.popleft()
        for nxt in sorted(TRANSITIONS[state]):
            if nxt not in seen:
                seen[nxt] = [*seen[state], nxt]
                todo.append(nxt)
    return seen[target]


def predecessors(dst: str) -> tuple[str, ...]:
    return tuple(sorted(src for src in STATES if can_move(src, dst)))


def test_the_table_covers_every_state_and_names_only_states() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert all(dsts <= set(STATES) for dsts in TRANSITIONS.values())
    assert FINAL.issubset(STATES)
    # nothing moves away from a final state except a done step being switched off
    assert {src for src in FINAL if TRANSITIONS[src]} == {"done"} and TRANSITIONS["done"] == {"undone"}
    # every state can be reached from 'planned'
    assert all(path_to(s)[0] == "planned" for s in STATES)


def test_the_engine_s_paths_are_allowed() -> None:
    """The moves the engine makes: claim, success, failure, retry, crash, undo, close."""
    for src, dst in [("planned", "running"), ("running", "done"), ("running", "failed"), ("failed", "running"),
                     ("running", "planned"), ("running", "uncertain"), ("uncertain", "done"),
                     ("uncertain", "failed"), ("done", "undone"), ("uncertain", "undone"), ("planned", "cancelled"),
                     ("failed", "cancelled"), ("planned", "skipped")]:
        assert can_move(src, dst), (src, dst)
    for src, dst in [("done", "running"), ("cancelled", "planned"), ("undone", "done"), ("skipped", "running"),
                     ("planned", "done"), ("failed", "done")]:
        assert not can_move(src, dst), (src, dst)


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=[f"{s}->{d}" for s, d in ALLOWED])
def test_every_allowed_move_is_made_from_its_source_state(store: Store, src: str, dst: str) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k")
    route = path_to(src)
    for before, after in zip(route, route[1:], strict=False):  # walk the step there, one guarded move at a time
        with store.transaction():
            assert store.set_step(row_id, expect=(before,), state=after)
    assert state_of(store, row_id) == src

    with store.transaction():
        assert store.set_step(row_id, expect=(src,), state=dst) is True

    assert state_of(store, row_id) == dst


@pytest.mark.parametrize(("src", "dst"), REFUSED, ids=[f"{s}->{d}" for s, d in REFUSED])
def test_a_move_the_table_does_not_allow_is_refused(store: Store, src: str, dst: str) -> None:
    sid = add_situation(store)
    row_id = add_step(store, sid, "k", state=src)
    guard = predecessors(dst)
    assert guard and src not in guard

    with store.transaction():
        assert store.set_step(row_id, expect=guard, state=dst, owner="intruder") is False

    row = store.get_step(row_id)
    assert row is not None and (row.state, row.owner) == (src, None)
