"""Contract: what history and the status page's uptime cache ask of a store (ledger_mark, first_opened_at,
autoreply_decided_between), for every implementation of conftest.IMPLEMENTATIONS."""

from __future__ import annotations

from datetime import timedelta

from tests.store.conftest import NOW, Store, add_situation, add_step


def test_the_ledger_mark_moves_at_every_situation_step_and_event(store: Store) -> None:
    assert store.ledger_mark() == (0, 0, 0) and store.first_opened_at() is None
    sid = add_situation(store, opened_at=NOW - timedelta(days=3))
    first = store.ledger_mark()
    add_step(store, sid, "k1")
    second = store.ledger_mark()
    with store.transaction():
        store.update_situation(sid, state="closed", closed_at=NOW)
        store.add_event(sid, NOW, "closed", "closed by anna")
    third = store.ledger_mark()
    assert first[0] == sid and len({first, second, third}) == 3 and first < second < third
    add_situation(store, channel="email", opened_at=NOW)
    assert store.first_opened_at() == NOW - timedelta(days=3)


def test_autoreplies_decided_in_a_period(store: Store) -> None:
    sid = add_situation(store)
    with store.transaction():
        for i, at in enumerate((NOW - timedelta(days=40), NOW - timedelta(days=2), NOW - timedelta(hours=1))):
            store.insert_autoreply_answer("box", key=f"a{i}", uidvalidity=1, uid=i, received_at=at, language="hu",
                                          situations=[sid], recipient="c@example.org", subject="Re: x",
                                          in_reply_to=None, references=[], decided_at=at)
            assert store.claim_autoreply("box", f"a{i}", "me", f"id{i}")
            assert store.set_autoreply_sent("box", f"a{i}", at)
        store.insert_autoreply_skip("other", key="s1", uidvalidity=1, uid=9, received_at=NOW, reason="bulk",
                                    language=None, situations=[sid], decided_at=NOW - timedelta(days=1))
    got = sorted(store.autoreply_decided_between(NOW - timedelta(days=30), NOW))
    assert got == [("sent", "ok", 2), ("skipped", "bulk", 1)]
    assert store.autoreply_decided_between(NOW, NOW + timedelta(days=1)) == []
