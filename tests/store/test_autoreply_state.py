"""Contract: the auto-responder's state in the store (continuity/store/autoreply.py), and the state machine
continuity.autoreply.state builds on it, for every implementation of conftest.IMPLEMENTATIONS.

    queued ─► sending ─► sent / failed / uncertain;  queued ─► skipped (closed) / failed;  sending ─► queued

Public methods only: the store's and AutoreplyState's, never SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from continuity.autoreply.state import AutoreplyState, Cursor, Pending, active_parts, known_mailboxes, mailbox_summary
from tests.store.conftest import NOW, Store, StoreFactory, add_situation, add_step

BOX = "outbox"


def pending(key: str, *situations: int, uid: int = 1, recipient: str = "cust@example.org") -> Pending:
    return Pending(key=key, uid=uid, recipient=recipient, subject="Re: help", in_reply_to=f"<{key}@ex>",
                   references=("<a@ex>", f"<{key}@ex>"), language="de", situations=situations, attempts=0)


def queue(state: AutoreplyState, p: Pending, at: Any = NOW) -> None:
    with state.store.transaction():
        state.record_queued(p, uidvalidity=7, received_at=at - timedelta(minutes=1), now=at)


def skip(state: AutoreplyState, key: str, *situations: int, reason: str = "auto-submitted", uid: int = 1) -> None:
    with state.store.transaction():
        state.record_skip(key=key, uidvalidity=7, uid=uid, received_at=NOW, reason=reason, language=None,
                          situations=list(situations), now=NOW)


def state_of(state: AutoreplyState, key: str) -> str | None:
    found = state.state_of(key)
    return found[0] if found else None


@pytest.fixture
def sid(store: Store) -> int:
    return add_situation(store)


@pytest.fixture
def box(store: Store) -> AutoreplyState:
    return AutoreplyState(store, BOX)


# the state machine ----------------------------------------------------------------------------------------

# transition ─► {state it moves from: state it leaves the row in}; from any other state it changes nothing.
MOVES: dict[str, dict[str, str]] = {
    "claim": {"queued": "sending"},
    "ending": {"sending": "sending"},
    "sent": {"sending": "sent"},
    "requeue": {"sending": "queued"},
    "uncertain": {"sending": "uncertain"},
    "failed": {"sending": "failed", "queued": "failed"},
    "closed": {"queued": "skipped"},
}
STATES = ("queued", "sending", "sent", "failed", "uncertain", "skipped")


def _put_in(box: AutoreplyState, key: str, target: str, sid: int) -> None:
    """Bring message `key` to `target` through the public transitions."""
    if target == "skipped":
        skip(box, key, sid)
        return
    queue(box, pending(key, sid))
    if target == "queued":
        return
    if target == "failed":
        box.mark_failed(key, "550 no")
        return
    assert box.mark_sending(key, "me:1", f"<id-{key}>")
    {"sending": lambda: None, "sent": lambda: box.mark_sent(key, NOW),
     "uncertain": lambda: box.mark_uncertain(key, "cut")}[target]()


def _apply(store: Store, move: str, key: str) -> bool:
    calls: dict[str, Callable[[], bool]] = {
        "claim": lambda: store.claim_autoreply(BOX, key, "other:2", "<other>"),
        "ending": lambda: store.set_autoreply_ending(BOX, key),
        "sent": lambda: store.set_autoreply_sent(BOX, key, NOW),
        "requeue": lambda: store.requeue_autoreply(BOX, key, "421 later"),
        "uncertain": lambda: store.set_autoreply_uncertain(BOX, key, "cut"),
        "failed": lambda: store.set_autoreply_failed(BOX, key, "550 no"),
        "closed": lambda: store.set_autoreply_closed(BOX, key),
    }
    with store.transaction():
        return calls[move]()


@pytest.mark.parametrize("move", sorted(MOVES))
@pytest.mark.parametrize("start", STATES)
def test_each_transition_moves_only_from_its_states(store: Store, box: AutoreplyState, sid: int, start: str,
                                                    move: str) -> None:
    _put_in(box, "k", start, sid)
    before = store.autoreply_message(BOX, "k")
    assert before is not None and before.state == start

    moved = _apply(store, move, "k")

    after = store.autoreply_message(BOX, "k")
    assert after is not None
    if start in MOVES[move]:
        assert moved is True
        assert after.state == MOVES[move][start]
    else:
        assert moved is False
        assert after == before  # nothing at all changed


def test_a_queued_answer_keeps_all_it_needs_to_be_sent(box: AutoreplyState, sid: int, store: Store) -> None:
    other = add_situation(store, channel="email")
    p = pending("m1", sid, other, uid=42)
    queue(box, p)

    assert box.state_of("m1") == ("queued", None)
    assert box.pending("m1") == p
    assert box.queued() == [p]
    row = store.autoreply_message(BOX, "m1")
    assert row is not None
    assert (row.decision, row.reason, row.uidvalidity, row.attempts, row.ending) == ("answer", "ok", 7, 0, False)
    assert (row.decided_at, row.received_at) == (NOW, NOW - timedelta(minutes=1))


def test_queued_answers_come_in_uid_order(box: AutoreplyState, sid: int) -> None:
    for key, uid in (("c", 30), ("a", 10), ("b", 20)):
        queue(box, pending(key, sid, uid=uid, recipient=f"{key}@example.org"))
    assert [p.key for p in box.queued()] == ["a", "b", "c"]


def test_a_message_is_decided_once(box: AutoreplyState, sid: int, store: Store) -> None:
    queue(box, pending("m1", sid))
    skip(box, "m1", sid, reason="rate-limited")  # the same Message-ID again: the first decision stands
    queue(box, pending("m1", sid, recipient="someone-else@example.org"))

    row = store.autoreply_message(BOX, "m1")
    assert row is not None and (row.state, row.recipient) == ("queued", "cust@example.org")
    assert box.state_of("never-seen") is None and box.pending("never-seen") is None


def test_a_skip_records_the_reason(box: AutoreplyState, sid: int, store: Store) -> None:
    skip(box, "s1", sid, reason="mailing-list")
    row = store.autoreply_message(BOX, "s1")
    assert row is not None
    assert (row.state, row.decision, row.reason, row.situations, row.recipient) == (
        "skipped", "skip", "mailing-list", (sid,), None)
    assert box.queued() == []


def test_claiming_counts_an_attempt_and_names_the_owner(box: AutoreplyState, sid: int, store: Store) -> None:
    queue(box, pending("m1", sid))
    assert box.mark_sending("m1", "host:1", "<answer-1>") is True
    box.mark_ending("m1")
    box.requeue("m1", "421 try later " + "x" * 600)

    row = store.autoreply_message(BOX, "m1")
    assert row is not None
    assert (row.state, row.owner, row.attempts, row.ending) == ("queued", None, 1, False)
    assert row.last_error is not None and len(row.last_error) == 500 and row.last_error.startswith("421")

    assert box.mark_sending("m1", "host:2", "<answer-2>") is True
    row = store.autoreply_message(BOX, "m1")
    assert row is not None
    assert (row.state, row.owner, row.answer_id, row.attempts, row.ending) == (
        "sending", "host:2", "<answer-2>", 2, False)
    assert box.state_of("m1") == ("sending", "host:2")


def test_sent_clears_owner_and_error(box: AutoreplyState, sid: int, store: Store) -> None:
    queue(box, pending("m1", sid))
    box.mark_sending("m1", "host:1", "<a>")
    box.requeue("m1", "421")
    box.mark_sending("m1", "host:1", "<a>")
    box.mark_ending("m1")
    box.mark_sent("m1", NOW + timedelta(seconds=3))

    row = store.autoreply_message(BOX, "m1")
    assert row is not None
    assert (row.state, row.owner, row.last_error, row.sent_at) == ("sent", None, None, NOW + timedelta(seconds=3))
    assert box.queued() == []


def test_ending_is_set_only_while_sending(box: AutoreplyState, sid: int, store: Store) -> None:
    queue(box, pending("m1", sid))
    box.mark_ending("m1")  # not sending yet: nothing
    row = store.autoreply_message(BOX, "m1")
    assert row is not None and row.ending is False

    box.mark_sending("m1", "host:1", "<a>")
    box.mark_ending("m1")
    row = store.autoreply_message(BOX, "m1")
    assert row is not None and (row.state, row.ending) == ("sending", True)

    box.mark_uncertain("m1", "connection reset after the final dot")
    row = store.autoreply_message(BOX, "m1")
    assert row is not None and (row.state, row.owner, row.ending) == ("uncertain", None, True)


# exactly once ---------------------------------------------------------------------------------------------


def test_two_handles_claim_a_queued_answer_once(store_factory: StoreFactory) -> None:
    first, second = store_factory.open(), store_factory.open()
    sid = add_situation(first)
    queue(AutoreplyState(first, BOX), pending("m1", sid))
    a, b = AutoreplyState(first, BOX), AutoreplyState(second, BOX)

    assert a.mark_sending("m1", "proc-a", "<a>") is True
    assert b.mark_sending("m1", "proc-b", "<b>") is False
    assert b.state_of("m1") == ("sending", "proc-a")

    a.requeue("m1", "421")  # queued again: the next claim, by either, wins once more
    assert b.mark_sending("m1", "proc-b", "<b>") is True
    assert a.mark_sending("m1", "proc-a", "<a>") is False
    row = second.autoreply_message(BOX, "m1")
    assert row is not None and (row.owner, row.answer_id, row.attempts) == ("proc-b", "<b>", 2)


def test_two_handles_racing_claim_every_answer_exactly_once(store_factory: StoreFactory) -> None:
    """Two threads, each with its own handle (its own connection), claim the same answers at the same moment."""
    keys = [f"m{i}" for i in range(40)]
    setup = store_factory.open()
    sid = add_situation(setup)
    for i, key in enumerate(keys):
        queue(AutoreplyState(setup, BOX), pending(key, sid, uid=i, recipient=f"c{i}@example.org"))
    handles = {name: store_factory.open(busy_timeout=20) for name in ("proc-a", "proc-b")}
    barrier = threading.Barrier(len(handles))
    won: dict[str, list[str]] = {name: [] for name in handles}
    errors: list[BaseException] = []

    def race(name: str) -> None:
        state = AutoreplyState(handles[name], BOX)
        try:
            for key in keys:
                barrier.wait(30)
                if state.mark_sending(key, name, f"<{name}-{key}>"):
                    won[name].append(key)
        except BaseException as exc:  # pragma: no cover - reported below
            barrier.abort()
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(name,)) for name in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(won["proc-a"] + won["proc-b"]) == sorted(keys)  # each once, none twice, none lost
    for name, mine in won.items():
        for key in mine:
            assert setup.autoreply_state(BOX, key) == ("sending", name)


# recover ----------------------------------------------------------------------------------------------------


def _sending(box: AutoreplyState, key: str, sid: int, owner: str, *, ending: bool, uid: int) -> None:
    queue(box, pending(key, sid, uid=uid, recipient=f"{key}@example.org"))
    assert box.mark_sending(key, owner, f"<{key}>")
    if ending:
        box.mark_ending(key)


def test_recover_makes_answers_at_the_final_dot_uncertain_and_requeues_the_others(
        box: AutoreplyState, sid: int, store: Store) -> None:
    _sending(box, "reached-dot", sid, "dead:1", ending=True, uid=1)
    _sending(box, "before-dot", sid, "dead:1", ending=False, uid=2)
    _sending(box, "alive-dot", sid, "alive:2", ending=True, uid=3)
    _sending(box, "alive", sid, "alive:2", ending=False, uid=4)
    queue(box, pending("waiting", sid, uid=5, recipient="w@example.org"))

    assert box.recover(lambda owner: owner == "alive:2") == ["reached-dot"]

    def row(key: str) -> tuple[str, str | None, str | None]:
        r = store.autoreply_message(BOX, key)
        assert r is not None
        return r.state, r.owner, r.last_error

    state, owner, error = row("reached-dot")
    assert (state, owner) == ("uncertain", None) and error is not None and "not sent again" in error
    state, owner, error = row("before-dot")
    assert (state, owner) == ("queued", None) and error is not None and "sending it again" in error
    assert row("alive-dot")[:2] == ("sending", "alive:2")
    assert row("alive")[:2] == ("sending", "alive:2")
    assert row("waiting") == ("queued", None, None)
    assert [p.key for p in box.queued()] == ["before-dot", "waiting"]
    requeued = store.autoreply_message(BOX, "before-dot")
    assert requeued is not None and (requeued.ending, requeued.attempts) == (False, 1)


def test_recover_with_nothing_stale_writes_nothing(box: AutoreplyState, sid: int, store: Store) -> None:
    _sending(box, "m1", sid, "alive:2", ending=True, uid=1)
    before = store.autoreply_message(BOX, "m1")
    assert box.recover(lambda owner: True) == []
    assert store.autoreply_message(BOX, "m1") == before
    assert AutoreplyState(store, "elsewhere").recover(lambda owner: False) == []  # another mailbox's rows


def test_an_uncertain_answer_is_never_sent_again(box: AutoreplyState, sid: int) -> None:
    _sending(box, "m1", sid, "dead:1", ending=True, uid=1)
    box.recover(lambda owner: False)
    assert box.mark_sending("m1", "me:3", "<again>") is False
    assert box.recover(lambda owner: False) == []  # and a second recovery does not report it again
    assert box.queued() == []


# cursor -----------------------------------------------------------------------------------------------------


def test_the_cursor_starts_at_zero_and_moves(box: AutoreplyState, store: Store) -> None:
    assert box.cursor() == Cursor(None, 0)
    assert store.autoreply_cursor(BOX) is None

    box.set_cursor("help@example.org", 1234, 17, NOW)
    assert box.cursor() == Cursor(1234, 17)
    box.set_cursor("help@example.org", 1235, 3, NOW + timedelta(minutes=1))  # a rebuilt mailbox: back to 3
    assert box.cursor() == Cursor(1235, 3)

    row = store.autoreply_cursor(BOX)
    assert row is not None
    assert (row.mailbox, row.address, row.updated_at) == (BOX, "help@example.org", NOW + timedelta(minutes=1))
    assert AutoreplyState(store, "other").cursor() == Cursor(None, 0)  # one cursor per mailbox


def test_ok_and_error_create_the_cursor_and_keep_each_other(box: AutoreplyState, store: Store) -> None:
    box.note_error("help@example.org", "IMAP imap.example.org: " + "e" * 900, NOW)
    assert box.cursor() == Cursor(None, 0)
    box.note_ok("help@example.org", NOW + timedelta(minutes=5))

    row = store.autoreply_cursor(BOX)
    assert row is not None
    assert row.last_error is not None and len(row.last_error) == 500
    assert (row.last_error_at, row.last_ok_at, row.last_uid) == (NOW, NOW + timedelta(minutes=5), 0)

    box.set_cursor("help@example.org", 9, 99, NOW + timedelta(minutes=6))
    box.note_error("other-address@example.org", "later", NOW + timedelta(minutes=7))  # the first address stays
    row = store.autoreply_cursor(BOX)
    assert row is not None
    assert (row.address, row.last_uid, row.last_error, row.last_ok_at) == (
        "help@example.org", 99, "later", NOW + timedelta(minutes=5))


# one answer per sender per situation per period ---------------------------------------------------------------


def test_a_queued_answer_counts_for_each_of_its_situations(box: AutoreplyState, sid: int, store: Store) -> None:
    other = add_situation(store, channel="email")
    third = add_situation(store, channel="chat")
    queue(box, pending("m1", sid, other), at=NOW)

    assert box.last_answers("cust@example.org", [sid, other, third]) == {sid: NOW, other: NOW}
    assert box.last_answers("cust@example.org", []) == {}
    assert box.last_answers("someone@example.org", [sid]) == {}
    assert AutoreplyState(store, "other-box").last_answers("cust@example.org", [sid]) == {}

    queue(box, pending("m2", sid), at=NOW + timedelta(days=2))  # a later period: the time moves on
    assert box.last_answers("cust@example.org", [sid, other]) == {sid: NOW + timedelta(days=2), other: NOW}


def test_a_sent_answer_keeps_the_period_used(box: AutoreplyState, sid: int) -> None:
    queue(box, pending("m1", sid))
    box.mark_sending("m1", "me:1", "<a>")
    box.mark_sent("m1", NOW)
    assert box.last_answers("cust@example.org", [sid]) == {sid: NOW}


@pytest.mark.parametrize("ending", ["failed", "closed"])
def test_an_answer_that_never_went_out_frees_the_period(box: AutoreplyState, sid: int, store: Store,
                                                        ending: str) -> None:
    other = add_situation(store, channel="email")
    queue(box, pending("m1", sid, other))
    queue(box, pending("m2", sid, recipient="second@example.org"))

    if ending == "failed":
        box.mark_failed("m1", "550 mailbox unknown")
    else:
        box.mark_closed("m1")

    assert box.last_answers("cust@example.org", [sid, other]) == {}
    assert box.last_answers("second@example.org", [sid]) == {sid: NOW}  # another sender's period stays
    row = store.autoreply_message(BOX, "m1")
    assert row is not None
    assert (row.state, row.reason) == (("failed", "ok") if ending == "failed" else ("skipped", "closed"))


def test_the_store_releases_nothing_for_an_empty_list(store: Store, sid: int) -> None:
    with store.transaction():
        store.set_autoreply_answered(BOX, "cust@example.org", [sid], NOW)
        store.release_autoreply_answered(BOX, "cust@example.org", [])
    assert store.autoreply_last_answers(BOX, "cust@example.org", [sid]) == {sid: NOW}


# group commit (the responder's DB writer) ------------------------------------------------------------------------


def test_a_savepoint_undoes_one_write_of_a_transaction(box: AutoreplyState, sid: int, store: Store) -> None:
    queue(box, pending("m1", sid))
    queue(box, pending("m2", sid, recipient="two@example.org"))
    with store.transaction():
        with store.savepoint():
            box.mark_sending("m1", "me:1", "<a>")
        with pytest.raises(RuntimeError), store.savepoint():
            box.mark_sending("m2", "me:1", "<b>")
            raise RuntimeError("this write fails")
    assert box.state_of("m1") == ("sending", "me:1")
    assert box.state_of("m2") == ("queued", None)


# the on-switch and the status -----------------------------------------------------------------------------------


def test_active_parts_follow_the_ledger(store: Store, sid: int) -> None:
    add_step(store, sid, "on", action="autoreply", sink=BOX, template="outage/autoreply", state="done",
             due_at=NOW + timedelta(minutes=5))
    add_step(store, sid, "upd", action="autoreply", sink=BOX, template="outage/autoreply-update", phase="update",
             state="done", due_at=NOW + timedelta(hours=1))
    add_step(store, sid, "planned", action="autoreply", sink=BOX, template="outage/later", state="planned")
    add_step(store, sid, "other-box", action="autoreply", sink="elsewhere", template="x", state="done")
    closed = add_situation(store, channel="email")
    add_step(store, closed, "c", action="autoreply", sink=BOX, template="t", state="done")
    with store.transaction():
        store.update_situation(closed, state="closed", closed_at=NOW, closed_by="anna")

    parts = active_parts(store, BOX)
    assert [(p.situation.id, p.template, p.since) for p in parts] == [
        (sid, "outage/autoreply", NOW + timedelta(minutes=5)),
        (sid, "outage/autoreply-update", NOW + timedelta(minutes=5)),  # switched on by the open phase
    ]
    assert parts[0].answers_from == NOW + timedelta(minutes=5)
    assert AutoreplyState(store, BOX).parts() == parts
    assert active_parts(store, "nobody") == []


def test_summary_and_known_mailboxes(box: AutoreplyState, sid: int, store: Store) -> None:
    assert known_mailboxes(store) == []
    empty = mailbox_summary(store, BOX)
    assert empty == {"counts": {}, "skipped_reasons": {}, "last_uid": 0, "uidvalidity": None, "last_ok_at": None,
                     "last_error": None, "last_error_at": None, "last_send_error": None}

    queue(box, pending("q", sid, uid=1))
    queue(box, pending("f1", sid, uid=2, recipient="f1@example.org"), at=NOW)
    box.mark_failed("f1", "550 first")
    queue(box, pending("f2", sid, uid=3, recipient="f2@example.org"), at=NOW + timedelta(seconds=1))
    box.mark_failed("f2", "550 latest")
    skip(box, "s1", sid, reason="mailing-list", uid=4)
    skip(box, "s2", sid, reason="mailing-list", uid=5)
    skip(box, "s3", sid, reason="auto-submitted", uid=6)
    box.set_cursor("help@example.org", 77, 6, NOW)
    box.note_error("help@example.org", "IMAP down", NOW)
    AutoreplyState(store, "another").set_cursor("x@example.org", 1, 1, NOW)

    summary = mailbox_summary(store, BOX)
    assert summary["counts"] == {"queued": 1, "failed": 2, "skipped": 3}
    assert list(summary["skipped_reasons"].items()) == [("mailing-list", 2), ("auto-submitted", 1)]
    assert (summary["last_uid"], summary["uidvalidity"], summary["last_error"], summary["last_error_at"]) == (
        6, 77, "IMAP down", NOW)
    assert summary["last_send_error"] == "550 latest"
    assert known_mailboxes(store) == ["another", BOX]
