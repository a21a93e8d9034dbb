"""SQLite store: WAL, numbered migrations, and write transactions that serialise concurrent processes.

Every write happens inside `transaction()` (BEGIN IMMEDIATE), so two `continuity outage phone` started at
the same moment queue up on the database lock and the second sees the first's situation. Creating the file,
switching it to WAL and migrating happen under an exclusive lock on its folder, because SQLite's own busy
handler does not cover them: two first commands on a fresh folder wait for each other instead of one failing
with "database is locked". A lock held longer than `busy_timeout` (a backup tool, a stuck process) ends in
`StoreBusy`, with nothing half-recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from continuity.errors import OperationFailed, StoreBusy
from continuity.store.autoreply import AutoreplySql
from continuity.store.campaigns import CampaignSql
from continuity.store.protocol import Store
from continuity.store.records import (
    EventRecord,
    LeaderSeat,
    LeaseRow,
    MaintenanceRecord,
    NodeRow,
    SituationRecord,
    StepRecord,
)
from continuity.store.times import from_ts, ts
from continuity.store.times import required_ts as _dt
from continuity.store.users import UserSql

# How long a command waits for a store another process holds, unless `store.busy_timeout` says otherwise.
DEFAULT_BUSY_TIMEOUT = 30.0
# SQLite's own wait per try; between tries the store checks its deadline and says that it waits.
BUSY_STEP = 0.5


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


MIGRATIONS: list[str] = [
    """
    CREATE TABLE situations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        playbook TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        source TEXT NOT NULL,
        opened_by TEXT NOT NULL,
        reason TEXT NOT NULL,
        eta TEXT,
        note TEXT,
        revision INTEGER NOT NULL DEFAULT 0,
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        closed_by TEXT,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX situations_one_open ON situations (kind, channel) WHERE state = 'open';
    CREATE TABLE steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        situation_id INTEGER NOT NULL REFERENCES situations (id),
        key TEXT NOT NULL UNIQUE,
        phase TEXT NOT NULL,
        step_id TEXT NOT NULL,
        occurrence INTEGER NOT NULL,
        action TEXT NOT NULL,
        sink TEXT NOT NULL,
        template TEXT NOT NULL,
        reversible INTEGER NOT NULL,
        idempotent INTEGER NOT NULL,
        every_s INTEGER,
        undo_of INTEGER REFERENCES steps (id),
        due_at TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_retry_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        owner TEXT,
        late INTEGER NOT NULL DEFAULT 0,
        detail TEXT
    );
    CREATE INDEX steps_by_state ON steps (state, due_at);
    CREATE INDEX steps_by_situation ON steps (situation_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        situation_id INTEGER NOT NULL REFERENCES situations (id),
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_situation ON events (situation_id, id);
    """,
    """
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        notice_s INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('scheduled', 'announced', 'active', 'done', 'cancelled')),
        situation_id INTEGER REFERENCES situations (id),
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX maintenance_by_state ON maintenance (state, starts_at);
    """,
    # (migration 3's and 4's queries now live in continuity/store/autoreply.py and continuity/store/campaigns.py)
    """
    -- 3: the e-mail auto-responder (continuity.autoreply, queries in continuity/autoreply/state.py)
    CREATE TABLE autoreply_cursor (
        mailbox TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        uidvalidity INTEGER,
        last_uid INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT,
        last_ok_at TEXT,
        last_error TEXT,
        last_error_at TEXT
    );
    CREATE TABLE autoreply_messages (
        mailbox TEXT NOT NULL,
        key TEXT NOT NULL,
        uidvalidity INTEGER,
        uid INTEGER,
        received_at TEXT,
        decided_at TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('answer', 'skip')),
        reason TEXT NOT NULL,
        language TEXT,
        situations TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'skipped', 'failed', 'uncertain')),
        recipient TEXT,
        subject TEXT,
        in_reply_to TEXT,
        refs TEXT,
        answer_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        last_error TEXT,
        sent_at TEXT,
        PRIMARY KEY (mailbox, key)
    );
    CREATE INDEX autoreply_messages_by_state ON autoreply_messages (mailbox, state);
    CREATE TABLE autoreply_senders (
        mailbox TEXT NOT NULL,
        sender TEXT NOT NULL,
        situation_id INTEGER NOT NULL REFERENCES situations (id),
        answered_at TEXT NOT NULL,
        PRIMARY KEY (mailbox, sender, situation_id)
    );
    """,
    """
    -- 4: campaigns (continuity.campaigns): runs on the calendar and versioned snapshots of the campaign file
    CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        run INTEGER NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('registered', 'briefed', 'live', 'ended', 'cancelled')),
        starts_at TEXT NOT NULL,
        ends_at TEXT NOT NULL,
        opens_at TEXT NOT NULL,
        situation_id INTEGER REFERENCES situations (id),
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (name, run)
    );
    CREATE INDEX campaigns_by_state ON campaigns (state, starts_at);
    CREATE TABLE campaign_versions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        source TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        changes TEXT NOT NULL DEFAULT '[]',
        UNIQUE (name, version)
    );
    """,
    """
    -- 5: how far a sink got with each part of an action that cannot be repeated safely (one e-mail recipient,
    -- one chat target, one post): 'ending' is written just before the point of no return (the final dot of
    -- DATA), 'sent' once the remote confirmed. A restart reads these, so it never sends a part twice.
    CREATE TABLE send_marks (
        key TEXT NOT NULL,
        part TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('ending', 'sent')),
        at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (key, part)
    );
    """,
    """
    -- 6: an answer `sending` whose final dot of DATA was (about to be) sent: only those can have gone out, so
    -- only those become `uncertain` after a crash, the others go back to `queued`.
    ALTER TABLE autoreply_messages ADD COLUMN ending INTEGER NOT NULL DEFAULT 0;
    """,
    """
    -- 7: the operator console (continuity.console, queries in continuity/store/users.py): users with an
    -- argon2 password hash, server-side sessions kept by the hash of their id, failed sign-ins for the throttle
    CREATE TABLE console_users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('oncall', 'marketing', 'viewer')),
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE console_sessions (
        id_hash TEXT PRIMARY KEY,
        user_name TEXT NOT NULL REFERENCES console_users (name) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX console_sessions_by_user ON console_sessions (user_name);
    CREATE TABLE console_failures (
        user_name TEXT NOT NULL,
        address TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX console_failures_by_key ON console_failures (user_name, address, at);
    """,
]





class SqliteStore(AutoreplySql, CampaignSql, UserSql):
    def __init__(self, path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 on_wait: Callable[[str], None] | None = None) -> None:
        """Open (creating and migrating it if need be) the store at `path`. `on_wait` is told, once, when the
        store is busy and this process starts waiting for it."""
        self.path = path
        self.busy_timeout = busy_timeout
        self._on_wait = on_wait
        self._told = False
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + busy_timeout
        with self._setup_lock(deadline):
            # Short waits inside SQLite, so a short busy_timeout is kept and the waiting is said in time.
            step = min(BUSY_STEP, max(busy_timeout / 4, 0.05))
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=step, check_same_thread=False)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute(f"PRAGMA busy_timeout = {int(step * 1000)}")
            self._depth = 0
            try:
                self._until(deadline, lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
                self.conn.execute("PRAGMA synchronous = FULL")
                self.conn.execute("PRAGMA foreign_keys = ON")
                self._migrate(deadline)
            except BaseException:
                self.conn.close()
                raise

    def close(self) -> None:
        self.conn.close()

    def reopen(self) -> Store:
        """A second, independent handle on the same file (for a worker thread of its own)."""
        return SqliteStore(self.path, busy_timeout=self.busy_timeout, on_wait=self._on_wait)

    def leadership(self, *, node: str, vantage: str, version: str, failover: float) -> LeaderSeat | None:
        """A SQLite file is one daemon's alone: no cluster, its daemon always leads."""
        return None

    def cluster_state(self) -> tuple[LeaseRow | None, list[NodeRow], datetime] | None:
        return None

    @contextmanager
    def _setup_lock(self, deadline: float) -> Iterator[None]:
        """Exclusive among the processes opening a store in this folder, for as long as setup takes. The lock is
        on the folder itself (flock works on a directory), so it leaves no file behind; SQLite's own locks, on
        the database file, are POSIX locks and never meet it."""
        fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._waiting(deadline)
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _waiting(self, deadline: float) -> None:
        """Say once that we wait; give up (StoreBusy) once the deadline has passed."""
        if time.monotonic() >= deadline:
            raise StoreBusy(f"{self.path} is busy: another process has held it for more than "
                            f"{self.busy_timeout:g}s (store.busy_timeout); nothing was recorded, run the command "
                            "again once it is free")
        if not self._told:
            self._told = True
            if self._on_wait is not None:
                self._on_wait(f"{self.path.name} is busy, waiting up to {self.busy_timeout:g}s…")

    def _until(self, deadline: float, attempt: Callable[[], Any]) -> Any:
        """Run `attempt` until SQLite stops answering busy, or the deadline."""
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                self._waiting(deadline)

    def _migrate(self, deadline: float) -> None:
        """Bring the schema up to date; a store already current is not locked for writing at all (a `status`
        never waits for a writer)."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise OperationFailed(f"{self.path} has schema version {version}, newer than this continuity knows "
                                  f"({len(MIGRATIONS)}): it was written by a newer release; upgrade continuity")
        if version == len(MIGRATIONS):
            return
        with self.transaction(deadline):
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self, deadline: float | None = None) -> Iterator[None]:
        """A write transaction; nested calls join the outer one. Waits for a busy store up to busy_timeout."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._until(deadline if deadline is not None else time.monotonic() + self.busy_timeout,
                    lambda: self.conn.execute("BEGIN IMMEDIATE"))
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current transaction (one is opened if none is) that an exception undoes alone: the
        exception propagates, and what the transaction wrote before the savepoint stays."""
        with self.transaction():
            self.conn.execute("SAVEPOINT op")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO op")
                self.conn.execute("RELEASE op")
                raise
            self.conn.execute("RELEASE op")

    # situations ---------------------------------------------------------------------------------------

    @staticmethod
    def _situation(row: sqlite3.Row) -> SituationRecord:
        return SituationRecord(
            id=row["id"], kind=row["kind"], channel=row["channel"], playbook=row["playbook"], state=row["state"],
            source=row["source"], opened_by=row["opened_by"], reason=row["reason"], eta=from_ts(row["eta"]),
            note=row["note"], revision=row["revision"], opened_at=_dt(row["opened_at"]),
            closed_at=from_ts(row["closed_at"]), closed_by=row["closed_by"], data=json.loads(row["data"]),
        )

    def find_open(self, kind: str, channel: str) -> SituationRecord | None:
        row = self.conn.execute(
            "SELECT * FROM situations WHERE kind = ? AND channel = ? AND state = 'open'", (kind, channel)
        ).fetchone()
        return self._situation(row) if row else None

    def get_situation(self, situation_id: int) -> SituationRecord | None:
        row = self.conn.execute("SELECT * FROM situations WHERE id = ?", (situation_id,)).fetchone()
        return self._situation(row) if row else None

    def open_situations(self) -> list[SituationRecord]:
        rows = self.conn.execute("SELECT * FROM situations WHERE state = 'open' ORDER BY id").fetchall()
        return [self._situation(r) for r in rows]

    def situations_since(self, since: datetime) -> list[SituationRecord]:
        rows = self.conn.execute(
            "SELECT * FROM situations WHERE opened_at >= ? OR closed_at >= ? OR state = 'open' ORDER BY id",
            (ts(since), ts(since)),
        ).fetchall()
        return [self._situation(r) for r in rows]

    def ledger_mark(self) -> tuple[int, int, int]:
        row = self.conn.execute("SELECT (SELECT MAX(id) FROM situations), (SELECT MAX(id) FROM steps),"
                                " (SELECT MAX(id) FROM events)").fetchone()
        return (row[0] or 0, row[1] or 0, row[2] or 0)

    def first_opened_at(self) -> datetime | None:
        return from_ts(self.conn.execute("SELECT MIN(opened_at) FROM situations").fetchone()[0])

    def insert_situation(self, *, kind: str, channel: str, playbook: str, source: str, opened_by: str,
                         reason: str, eta: datetime | None, opened_at: datetime,
                         data: dict[str, Any] | None = None) -> int:
        cur = self.conn.execute(
            "INSERT INTO situations (kind, channel, playbook, state, source, opened_by, reason, eta, opened_at, data)"
            " VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
            (kind, channel, playbook, source, opened_by, reason, ts(eta), ts(opened_at), json.dumps(data or {})),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def update_situation(self, situation_id: int, **fields: Any) -> None:
        allowed = {"reason", "eta", "note", "revision", "state", "closed_at", "closed_by", "data"}
        sets, values = [], []
        for name, value in fields.items():
            if name not in allowed:
                raise KeyError(name)
            if isinstance(value, datetime):
                value = ts(value)
            elif name == "data":
                value = json.dumps(value)
            sets.append(f"{name} = ?")
            values.append(value)
        self.conn.execute(f"UPDATE situations SET {', '.join(sets)} WHERE id = ?", (*values, situation_id))

    # steps (the ledger) -------------------------------------------------------------------------------

    @staticmethod
    def _step(row: sqlite3.Row) -> StepRecord:
        return StepRecord(
            id=row["id"], situation_id=row["situation_id"], key=row["key"], phase=row["phase"],
            step_id=row["step_id"], occurrence=row["occurrence"], action=row["action"], sink=row["sink"],
            template=row["template"], reversible=bool(row["reversible"]), idempotent=bool(row["idempotent"]),
            every_s=row["every_s"], undo_of=row["undo_of"], due_at=_dt(row["due_at"]), state=row["state"],
            attempts=row["attempts"], last_error=row["last_error"], next_retry_at=from_ts(row["next_retry_at"]),
            started_at=from_ts(row["started_at"]), finished_at=from_ts(row["finished_at"]), owner=row["owner"],
            late=bool(row["late"]), detail=row["detail"],
        )

    def insert_step(self, *, situation_id: int, key: str, phase: str, step_id: str, occurrence: int, action: str,
                    sink: str, template: str, reversible: bool, idempotent: bool, every_s: int | None,
                    due_at: datetime, undo_of: int | None = None, state: str = "planned") -> int | None:
        """Plan a step; a key that exists already is left alone (planning twice is harmless)."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO steps (situation_id, key, phase, step_id, occurrence, action, sink, template,"
            " reversible, idempotent, every_s, undo_of, due_at, state) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (situation_id, key, phase, step_id, occurrence, action, sink, template, int(reversible),
             int(idempotent), every_s, undo_of, ts(due_at), state),
        )
        return cur.lastrowid if cur.rowcount else None

    def steps_for(self, situation_id: int) -> list[StepRecord]:
        rows = self.conn.execute(
            "SELECT * FROM steps WHERE situation_id = ? ORDER BY due_at, id", (situation_id,)
        ).fetchall()
        return [self._step(r) for r in rows]

    def get_step(self, step_row_id: int) -> StepRecord | None:
        row = self.conn.execute("SELECT * FROM steps WHERE id = ?", (step_row_id,)).fetchone()
        return self._step(row) if row else None

    def due_steps(self, now: datetime, situation_ids: Sequence[int] | None = None) -> list[StepRecord]:
        """Planned steps whose time has come and failed steps whose retry is due, oldest first.

        An undo waits while the step it switches off is still running somewhere.
        """
        sql = (
            "SELECT s.* FROM steps s LEFT JOIN steps t ON s.undo_of = t.id"
            " WHERE ((s.state = 'planned' AND s.due_at <= ?) OR (s.state = 'failed' AND s.next_retry_at <= ?))"
            " AND (t.id IS NULL OR t.state != 'running')"
        )
        args: list[Any] = [ts(now), ts(now)]
        if situation_ids is not None:
            sql += f" AND s.situation_id IN ({','.join('?' * len(situation_ids))})"
            args.extend(situation_ids)
        rows = self.conn.execute(sql + " ORDER BY s.due_at, s.id", args).fetchall()
        return [self._step(r) for r in rows]

    def next_due(self) -> datetime | None:
        row = self.conn.execute(
            "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM steps WHERE state = 'planned'"
            " UNION ALL SELECT MIN(next_retry_at) FROM steps WHERE state = 'failed')"
        ).fetchone()
        return from_ts(row[0]) if row and row[0] else None

    def pending_steps(self) -> list[StepRecord]:
        """Rows that will need running: planned, or failed with a retry time."""
        rows = self.conn.execute(
            "SELECT * FROM steps WHERE state = 'planned' OR (state = 'failed' AND next_retry_at IS NOT NULL)"
            " ORDER BY id"
        ).fetchall()
        return [self._step(r) for r in rows]

    def running_steps(self) -> list[StepRecord]:
        rows = self.conn.execute("SELECT * FROM steps WHERE state = 'running' ORDER BY id").fetchall()
        return [self._step(r) for r in rows]

    def set_step(self, step_row_id: int, *, expect: Sequence[str] | None = None, **fields: Any) -> bool:
        """Update a ledger row; with `expect`, only if it is still in one of those states (a claim)."""
        allowed = {"state", "attempts", "last_error", "next_retry_at", "started_at", "finished_at", "owner",
                   "late", "detail", "due_at"}
        sets, values = [], []
        for name, value in fields.items():
            if name not in allowed:
                raise KeyError(name)
            if isinstance(value, datetime):
                value = ts(value)
            elif isinstance(value, bool):
                value = int(value)
            sets.append(f"{name} = ?")
            values.append(value)
        sql = f"UPDATE steps SET {', '.join(sets)} WHERE id = ?"
        values.append(step_row_id)
        if expect is not None:
            if not expect:  # no state is expected: nothing can match (a guard built from data may be empty)
                return False
            sql += f" AND state IN ({','.join('?' * len(expect))})"
            values.extend(expect)
        return self.conn.execute(sql, values).rowcount == 1

    # timeline -----------------------------------------------------------------------------------------

    def add_event(self, situation_id: int, at: datetime, kind: str, message: str) -> None:
        self.conn.execute(
            "INSERT INTO events (situation_id, at, kind, message) VALUES (?, ?, ?, ?)",
            (situation_id, ts(at), kind, message),
        )

    def events_for(self, situation_id: int) -> list[EventRecord]:
        rows = self.conn.execute(
            "SELECT * FROM events WHERE situation_id = ? ORDER BY id", (situation_id,)
        ).fetchall()
        return [EventRecord(r["id"], r["situation_id"], _dt(r["at"]), r["kind"], r["message"]) for r in rows]

    # send marks (a sink's progress through the parts of one action) ----------------------------------------

    def send_marks(self, key: str) -> dict[str, tuple[str, str]]:
        """part → (state, detail) for one action key."""
        rows = self.conn.execute("SELECT part, state, detail FROM send_marks WHERE key = ?", (key,)).fetchall()
        return {r["part"]: (r["state"], r["detail"]) for r in rows}

    def set_send_mark(self, key: str, part: str, state: str | None, at: datetime, detail: str = "") -> None:
        """Record a part's state durably (its own transaction unless inside one); None forgets the part."""
        with self.transaction():
            if state is None:
                self.conn.execute("DELETE FROM send_marks WHERE key = ? AND part = ?", (key, part))
            else:
                self.conn.execute(
                    "INSERT INTO send_marks (key, part, state, at, detail) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (key, part) DO UPDATE SET state = excluded.state, at = excluded.at,"
                    " detail = excluded.detail",
                    (key, part, state, ts(at), detail),
                )

    def settle_send_marks(self, key: str, sent: bool, at: datetime) -> int:
        """A person's word on the parts left 'ending': they went out (sent) or they did not (forget them, so
        the next run sends them). Returns how many parts it settled."""
        if sent:
            cur = self.conn.execute("UPDATE send_marks SET state = 'sent', at = ? WHERE key = ? AND state = 'ending'",
                                    (ts(at), key))
        else:
            cur = self.conn.execute("DELETE FROM send_marks WHERE key = ? AND state = 'ending'", (key,))
        return cur.rowcount

    # maintenance windows -----------------------------------------------------------------------------------

    @staticmethod
    def _maintenance(row: sqlite3.Row) -> MaintenanceRecord:
        return MaintenanceRecord(
            id=row["id"], channel=row["channel"], starts_at=_dt(row["starts_at"]), ends_at=_dt(row["ends_at"]),
            notice_s=row["notice_s"], reason=row["reason"], state=row["state"], situation_id=row["situation_id"],
            created_by=row["created_by"], created_at=_dt(row["created_at"]),
        )

    def insert_maintenance(self, *, channel: str, starts_at: datetime, ends_at: datetime, notice_s: int,
                           reason: str, created_by: str, created_at: datetime) -> int:
        cur = self.conn.execute(
            "INSERT INTO maintenance (channel, starts_at, ends_at, notice_s, reason, state, created_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?)",
            (channel, ts(starts_at), ts(ends_at), notice_s, reason, created_by, ts(created_at)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def maintenance(self, include_ended: bool = False) -> list[MaintenanceRecord]:
        sql = "SELECT * FROM maintenance"
        if not include_ended:
            sql += " WHERE state IN ('scheduled', 'announced', 'active')"
        return [self._maintenance(r) for r in self.conn.execute(sql + " ORDER BY starts_at, id").fetchall()]

    def get_maintenance(self, window_id: int) -> MaintenanceRecord | None:
        row = self.conn.execute("SELECT * FROM maintenance WHERE id = ?", (window_id,)).fetchone()
        return self._maintenance(row) if row else None

    def set_maintenance(self, window_id: int, *, state: str, situation_id: int | None = None) -> None:
        self.conn.execute("UPDATE maintenance SET state = ?, situation_id = COALESCE(?, situation_id) WHERE id = ?",
                          (state, situation_id, window_id))
