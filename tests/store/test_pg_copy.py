"""POSTGRESQL ONLY: `copy_store` carries every kind of row SQLite → PostgreSQL → SQLite, ids, times, flags and
JSON intact, read back through the stores' public methods (the CLI round trip is tests/test_store_copy.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from continuity.errors import InputError
from continuity.store.sqlite import SqliteStore
from continuity.store.store_copy import copy_store, counts
from tests.store.conftest import NOW, add_situation, add_step

pytest.importorskip("psycopg")
from continuity.store.postgres import PostgresStore  # noqa: E402
from tests.store.pgserver import drop_database, fresh_database  # noqa: E402

MIN = timedelta(minutes=1)


@pytest.fixture
def pg() -> Iterator[PostgresStore]:
    url = fresh_database()
    store = PostgresStore(url)
    yield store
    store.close()
    drop_database(url)


def fill(store: Any) -> None:
    """One or more rows in every table, through the public methods."""
    sid = add_situation(store, data={"nested": {"k": [1, "ü"]}})
    closed = add_situation(store, channel="email", eta=None)
    with store.transaction():
        store.update_situation(closed, state="closed", closed_at=NOW + 5 * MIN, closed_by="anna", note="done")
    first = add_step(store, sid, "k1", reversible=True, idempotent=False, every_s=3600)
    add_step(store, sid, "k1-undo", phase="undo", undo_of=first, due_at=NOW + 2 * MIN)
    with store.transaction():
        store.set_step(first, state="done", attempts=2, late=True, started_at=NOW, finished_at=NOW + MIN,
                       detail="outbox/x.eml", last_error="a 503 first")
        store.add_event(sid, NOW, "opened", "opened by anna")
        store.add_event(sid, NOW + MIN, "eta", "ETA moved")
        window = store.insert_maintenance(channel="phone", starts_at=NOW + 60 * MIN, ends_at=NOW + 90 * MIN,
                                          notice_s=3600, reason="PBX upgrade", created_by="ops", created_at=NOW)
        store.set_maintenance(window, state="announced", situation_id=closed)
        store.ensure_autoreply_cursor("support", "support@example.test")
        store.set_autoreply_cursor("support", 4_000_000_000, 17, NOW)
        store.set_autoreply_error("support", "IMAP timeout", NOW + MIN)
        store.insert_autoreply_answer("support", key="m1", uidvalidity=4_000_000_000, uid=16, received_at=NOW,
                                      language="hu", situations=[sid], recipient="c@example.test", subject="Re: x",
                                      in_reply_to="<a@b>", references=["<a@b>"], decided_at=NOW)
        store.claim_autoreply("support", "m1", "node-a", "<answer@id>")
        store.set_autoreply_ending("support", "m1")
        store.insert_autoreply_skip("support", key="m2", uidvalidity=None, uid=None, received_at=None,
                                    reason="list", language=None, situations=[], decided_at=NOW)
        store.set_autoreply_answered("support", "c@example.test", [sid], NOW)
        version = store.insert_campaign_version(name="bf", created_by="mk", created_at=NOW, source="bf.yaml",
                                                snapshot={"title": "Black Friday", "codes": ["BF26"]},
                                                changes=["registered"])
        run = store.insert_campaign_run(name="bf", run=1, version=version, starts_at=NOW + 90 * MIN,
                                        ends_at=NOW + 900 * MIN, opens_at=NOW + 30 * MIN, created_by="mk",
                                        created_at=NOW)
        store.set_campaign_run(run, at=NOW + MIN, state="briefed", situation_id=sid)
        store.add_user(name="anna", role="oncall", password_hash="$argon2id$fake", at=NOW)
        store.insert_session(id_hash="h1", user_name="anna", csrf="c1", created_at=NOW, expires_at=NOW + 60 * MIN)
        store.add_login_failure(user_name="bob", address="10.0.0.9", at=NOW)
    store.set_send_mark("k1", "c@example.test", "ending", NOW, "250 queued")


def everything(store: Any) -> dict[str, Any]:
    """Every row, as the rest of continuity reads it."""
    sits = store.situations_since(NOW - 60 * MIN)
    return {
        "situations": sits,
        "steps": [store.steps_for(s.id) for s in sits],
        "events": [store.events_for(s.id) for s in sits],
        "marks": store.send_marks("k1"),
        "maintenance": store.maintenance(include_ended=True),
        "cursor": store.autoreply_cursor("support"),
        "messages": [store.autoreply_message("support", k) for k in ("m1", "m2")],
        "answered": store.autoreply_last_answers("support", "c@example.test", [s.id for s in sits]),
        "runs": store.campaign_runs(),
        "versions": store.campaign_versions("bf"),
        "users": [(u.name, u.role, u.password_hash, u.created_at) for u in store.users()],
        "session": store.get_session("h1", NOW),
        "failures": store.login_failures(user_name="bob", address="10.0.0.9", since=NOW - MIN),
    }


def test_every_row_goes_to_postgresql_and_back(tmp_path: Path, pg: PostgresStore) -> None:
    source = SqliteStore(tmp_path / "src.db")
    back = SqliteStore(tmp_path / "back.db")
    try:
        fill(source)
        expected = everything(source)
        assert all(n > 0 for n in counts(source).values()), counts(source)

        result = copy_store(source, pg)
        assert result.counts == counts(source) == counts(pg)
        assert everything(pg) == expected

        copy_store(pg, back)
        assert everything(back) == expected
        # both copies number on after the copied ids
        for store in (pg, back):
            assert add_situation(store, channel="chat") == 3
    finally:
        source.close()
        back.close()


def test_a_refused_copy_leaves_the_destination_as_it_was(tmp_path: Path, pg: PostgresStore) -> None:
    source = SqliteStore(tmp_path / "src.db")
    try:
        fill(source)
        add_situation(pg, channel="chat", reason="already here")
        with pytest.raises(InputError, match=r"is not empty \(situations: 1\)"):
            copy_store(source, pg)
        assert [s.reason for s in pg.open_situations()] == ["already here"]

        copy_store(source, pg, force=True)
        assert everything(pg) == everything(source)
    finally:
        source.close()
