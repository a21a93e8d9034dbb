"""SQLITE ONLY, not part of the store contract: old SQLite store files are migrated on open.

For every earlier schema version N (0 .. len(MIGRATIONS)-1) a store file is built by hand at version N
(MIGRATIONS[:N] applied with sqlite3, PRAGMA user_version = N), with a few rows in the tables that exist at that
version, written in the on-disk format (fixed-width UTC text times, JSON data). Opening it with SqliteStore must
bring it to the latest version with the old rows intact: read through the store's public methods where it has
them, with sqlite3 for the tables other modules query (auto-responder, campaigns).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from continuity.errors import ContinuityError, StoreBusy
from continuity.store.sqlite import MIGRATIONS, SqliteStore
from tests.store.conftest import NOW, add_situation, add_step

LATEST = len(MIGRATIONS)
T = {  # the times the rows below are written with, as they are on disk and as the store returns them
    "09:00": ("2026-11-23T09:00:00.000000Z", NOW),
    "09:05": ("2026-11-23T09:05:00.000000Z", NOW + timedelta(minutes=5)),
    "10:30": ("2026-11-23T10:30:00.250000Z", NOW + timedelta(minutes=90, milliseconds=250)),
    "08:00": ("2026-11-23T08:00:00.000000Z", NOW - timedelta(hours=1)),
    "12:30": ("2026-11-23T12:30:00.000000Z", NOW + timedelta(hours=3, minutes=30)),
}


def disk(name: str) -> str:
    return T[name][0]


def when(name: str) -> datetime:
    return T[name][1]


def build_store_at(path: Path, version: int) -> None:
    """A store file as the release with `version` migrations left it, with rows in its tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {version}")
        fill(conn, version)
    finally:
        conn.close()


def fill(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN")
    if version >= 1:
        conn.execute(
            "INSERT INTO situations (id, kind, channel, playbook, state, source, opened_by, reason, eta, note,"
            " revision, opened_at, closed_at, closed_by, data) VALUES"
            " (1, 'outage', 'phone', 'outage-phone', 'open', 'cli', 'anna', 'trunk down', ?, NULL, 2, ?, NULL, NULL,"
            " '{\"unsure\": [3]}'),"
            " (2, 'outage', 'email', 'outage-email', 'closed', 'daemon', 'health:email', 'mx down', NULL, 'fixed', 0,"
            " ?, ?, 'bela', '{}')",
            (disk("10:30"), disk("09:00"), disk("08:00"), disk("09:05")))
        step = ("INSERT INTO steps (id, situation_id, key, phase, step_id, occurrence, action, sink, template,"
                " reversible, idempotent, every_s, undo_of, due_at, state, attempts, last_error, next_retry_at,"
                " started_at, finished_at, owner, late, detail) VALUES"
                " (?, ?, ?, 'open', ?, 1, 'notify', ?, 'outage/x', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        conn.executemany(step, [
            (1, 1, "s1/open/staff-runbook/1/staff_mail", "staff-runbook", "staff_mail", 0, 1, None, None,
             disk("09:00"), "planned", 0, None, None, None, None, None, 0, None),
            (2, 1, "s1/open/banner/1/web", "banner", "web", 1, 0, 900, None, disk("08:00"), "failed", 2,
             "503", disk("09:05"), disk("08:00"), None, None, 1, "retrying"),
            (3, 1, "s1/open/notice/1/smtp", "notice", "smtp", 0, 0, None, None, disk("08:00"), "uncertain", 1,
             "crash", None, disk("08:00"), disk("09:00"), None, 0, None),
            (4, 2, "s2/open/banner/1/web", "banner", "web", 1, 1, None, None, disk("08:00"), "done", 1, None, None,
             disk("08:00"), disk("09:00"), None, 0, "200 ok"),
            (5, 2, "s2/undo/banner/web", "banner", "web", 0, 1, None, 4, disk("09:05"), "planned", 0, None, None,
             None, None, None, 0, None),
        ])
        conn.executemany("INSERT INTO events (situation_id, at, kind, message) VALUES (?, ?, ?, ?)", [
            (1, disk("09:00"), "opened", "opened by anna: trunk down"),
            (2, disk("08:00"), "opened", "opened by health:email"),
            (1, disk("09:05"), "eta", "ETA changed"),
        ])
    if version >= 2:
        conn.execute(
            "INSERT INTO maintenance (id, channel, starts_at, ends_at, notice_s, reason, state, situation_id,"
            " created_by, created_at) VALUES (1, 'phone', ?, ?, 3600, 'PBX firmware', 'scheduled', NULL, 'anna', ?),"
            " (2, 'email', ?, ?, 0, 'old', 'done', 2, 'bela', ?)",
            (disk("10:30"), disk("12:30"), disk("08:00"),
             disk("08:00"), disk("09:00"), disk("08:00")))
    if version >= 3:
        conn.execute("INSERT INTO autoreply_cursor (mailbox, address, uidvalidity, last_uid, updated_at)"
                     " VALUES ('support', 'support@example.com', 7, 42, ?)", (disk("09:00"),))
        conn.execute("INSERT INTO autoreply_messages (mailbox, key, uidvalidity, uid, decided_at, decision, reason,"
                     " situations, state, recipient, attempts) VALUES"
                     " ('support', 'm1', 7, 41, ?, 'answer', 'outage', '[1]', 'sending', 'c@example.com', 1)",
                     (disk("09:00"),))
        conn.execute("INSERT INTO autoreply_senders (mailbox, sender, situation_id, answered_at)"
                     " VALUES ('support', 'c@example.com', 1, ?)", (disk("09:05"),))
    if version >= 4:
        conn.execute("INSERT INTO campaigns (name, run, version, state, starts_at, ends_at, opens_at, created_by,"
                     " created_at, updated_at) VALUES ('black-friday', 1, 1, 'registered', ?, ?, ?, 'anna', ?, ?)",
                     (disk("10:30"), disk("10:30"), disk("09:05"), disk("08:00"), disk("08:00")))
        conn.execute("INSERT INTO campaign_versions (name, version, created_at, created_by, source, snapshot)"
                     " VALUES ('black-friday', 1, ?, 'anna', 'campaigns.yaml', '{}')", (disk("08:00"),))
    if version >= 5:
        conn.execute("INSERT INTO send_marks (key, part, state, at, detail) VALUES"
                     " ('s1/open/notice/1/smtp', 'a@example.com', 'ending', ?, 'DATA sent'),"
                     " ('s1/open/notice/1/smtp', 'b@example.com', 'sent', ?, '250 ok')", (disk("09:00"),
                                                                                           disk("09:00")))
    conn.execute("COMMIT")


def columns(path: Path) -> dict[str, list[tuple[str, str, int, str | None]]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: [(r[1], r[2], r[3], r[4]) for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def check_old_rows(store: SqliteStore, path: Path, version: int) -> None:
    """The rows fill() wrote at `version`, read back after the migration."""
    if version < 1:
        assert store.open_situations() == [] and store.pending_steps() == []
    else:
        sit = store.get_situation(1)
        assert sit is not None
        assert (sit.kind, sit.channel, sit.playbook, sit.state, sit.opened_by, sit.reason, sit.eta, sit.revision,
                sit.opened_at, sit.data) == ("outage", "phone", "outage-phone", "open", "anna", "trunk down",
                                             when("10:30"), 2, when("09:00"), {"unsure": [3]})
        closed = store.get_situation(2)
        assert closed is not None
        assert (closed.state, closed.closed_at, closed.closed_by, closed.note) == ("closed", when("09:05"), "bela",
                                                                                    "fixed")
        assert [s.id for s in store.open_situations()] == [1]
        found = store.find_open("outage", "phone")
        assert found is not None and found.id == 1
        assert [(r.id, r.state) for r in store.steps_for(1)] == [(2, "failed"), (3, "uncertain"), (1, "planned")]
        banner = store.get_step(2)
        assert banner is not None
        assert (banner.reversible, banner.idempotent, banner.every_s, banner.attempts, banner.last_error,
                banner.next_retry_at, banner.late, banner.detail) == (True, False, 900, 2, "503", when("09:05"),
                                                                      True, "retrying")
        undo = store.get_step(5)
        assert undo is not None and undo.undo_of == 4
        assert [r.id for r in store.due_steps(when("09:05"))] == [2, 1, 5]
        assert [(e.kind, e.at) for e in store.events_for(1)] == [("opened", when("09:00")), ("eta", when("09:05"))]
    if version >= 2:
        assert [(w.id, w.state, w.starts_at) for w in store.maintenance(include_ended=True)] == [
            (2, "done", when("08:00")), (1, "scheduled", when("10:30"))]
        old = store.get_maintenance(2)
        assert old is not None and old.situation_id == 2
    else:
        assert store.maintenance(include_ended=True) == []
    if version >= 5:
        assert store.send_marks("s1/open/notice/1/smtp") == {"a@example.com": ("ending", "DATA sent"),
                                                             "b@example.com": ("sent", "250 ok")}
    conn = sqlite3.connect(path)
    try:
        if version >= 3:
            assert conn.execute("SELECT address, uidvalidity, last_uid FROM autoreply_cursor").fetchall() == [
                ("support@example.com", 7, 42)]
            # migration 6 gave the old answer its `ending` flag, off
            assert conn.execute("SELECT key, state, attempts, ending FROM autoreply_messages").fetchall() == [
                ("m1", "sending", 1, 0)]
            assert conn.execute("SELECT sender, situation_id FROM autoreply_senders").fetchall() == [
                ("c@example.com", 1)]
        if version >= 4:
            assert conn.execute("SELECT name, run, state FROM campaigns").fetchall() == [
                ("black-friday", 1, "registered")]
            assert conn.execute("SELECT name, version FROM campaign_versions").fetchall() == [("black-friday", 1)]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def fresh_columns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str, int, str | None]]]:
    path = tmp_path_factory.mktemp("fresh") / "s.db"
    SqliteStore(path).close()
    return columns(path)


@pytest.mark.parametrize("version", range(LATEST))
def test_a_store_from_an_earlier_version_is_migrated_with_its_rows(
        tmp_path: Path, version: int, fresh_columns: dict[str, list[tuple[str, str, int, str | None]]]) -> None:
    path = tmp_path / "s.db"
    build_store_at(path, version)
    assert user_version(path) == version

    store = SqliteStore(path)
    try:
        check_old_rows(store, path, version)
    finally:
        store.close()

    assert user_version(path) == LATEST
    assert columns(path) == fresh_columns  # the same schema as a store created at the latest version
    store = SqliteStore(path)  # opening it again changes nothing
    try:
        assert user_version(path) == LATEST
        check_old_rows(store, path, version)
        # and the migrated store takes new rows in every table, old and new
        sid = add_situation(store, channel="chat")
        row_id = add_step(store, sid, "new-step", due_at=NOW)
        with store.transaction():
            store.add_event(sid, NOW, "opened", "new")
            wid = store.insert_maintenance(channel="chat", starts_at=NOW, ends_at=NOW + timedelta(hours=1),
                                           notice_s=0, reason="new", created_by="x", created_at=NOW)
        store.set_send_mark("new-step", "p", "ending", NOW)
        assert store.send_marks("new-step") == {"p": ("ending", "")}
        assert [r.id for r in store.steps_for(sid)] == [row_id]
        assert [e.message for e in store.events_for(sid)] == ["new"]
        new_window = store.get_maintenance(wid)
        assert new_window is not None and new_window.reason == "new"
    finally:
        store.close()


def test_a_store_at_the_latest_version_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    build_store_at(path, LATEST)

    SqliteStore(path).close()

    assert user_version(path) == LATEST
    store = SqliteStore(path)
    try:
        check_old_rows(store, path, LATEST)
    finally:
        store.close()


def test_a_migration_that_fails_leaves_the_store_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    build_store_at(path, 2)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE autoreply_senders (x INTEGER)")  # in the way of the third statement of migration 3
    conn.close()

    with pytest.raises(sqlite3.OperationalError, match="already exists"):
        SqliteStore(path)

    assert user_version(path) == 2
    tables = set(columns(path))
    assert "autoreply_cursor" not in tables and "autoreply_messages" not in tables  # nothing half-migrated
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM situations").fetchone() == (2,)
    finally:
        conn.close()


def test_a_current_store_opens_while_another_process_writes_and_its_writes_wait(tmp_path: Path) -> None:
    """Opening a store that needs no migration takes no write lock (a `status` never waits for a writer);
    its first write waits up to busy_timeout and then raises StoreBusy."""
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    script = ("import sqlite3, sys, time\n"
              "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "c.execute('BEGIN IMMEDIATE')\n"
              "print('locked', flush=True)\n"
              "sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        store = SqliteStore(path, busy_timeout=0.5)
        opened = time.monotonic() - started
        try:
            assert store.open_situations() == []  # reads go on beside the writer (WAL)
            started = time.monotonic()
            with pytest.raises(StoreBusy, match="s.db is busy"), store.transaction():
                pass
            waited = time.monotonic() - started
        finally:
            store.close()
    finally:
        holder.communicate("", timeout=10)
    assert opened < 0.4, opened
    assert 0.4 <= waited < 5, waited
    SqliteStore(path, busy_timeout=0.5).close()  # free again


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    finally:
        conn.close()
    with pytest.raises(ContinuityError, match="newer release"):
        SqliteStore(path)
