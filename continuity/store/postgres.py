"""PostgreSQL store: the same `Store` contract as SqliteStore, for several nodes on one database.

One connection per handle, in autocommit mode: a read outside `transaction()` is a statement of its own and
never waits for a writer. `transaction()` is BEGIN plus a transaction-scoped advisory lock that every write
transaction of every process takes first, so write transactions run one at a time exactly as SQLite's BEGIN
IMMEDIATE makes them: a `find_open` then `insert_situation` in one transaction cannot race another's, and
whatever a transaction reads after taking the lock is the latest committed state. A lock held longer than
`busy_timeout` ends in StoreBusy with nothing of the transaction run. Migrations are applied at start inside
such a transaction, so two nodes starting at once apply them once.

Times are `timestamptz`, passed in as aware datetimes and handed back in UTC, so records equal SqliteStore's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from continuity.errors import Fenced, OperationFailed, StoreBusy, StoreUnavailable
from continuity.store.pg_autoreply import AutoreplyPg
from continuity.store.pg_campaigns import CampaignPg
from continuity.store.pg_cluster import LOST, Leadership, db_now, fence_epoch, read_lease, read_nodes
from continuity.store.pg_schema import MIGRATIONS, VERSION_TABLE
from continuity.store.pg_url import label, safe_url
from continuity.store.pg_users import UserPg
from continuity.store.pg_values import as_utc, req_utc, utc
from continuity.store.protocol import Store
from continuity.store.records import (
    EventRecord,
    Fence,
    LeaderSeat,
    LeaseRow,
    MaintenanceRecord,
    NodeRow,
    SituationRecord,
    StepRecord,
)

DEFAULT_BUSY_TIMEOUT = 30.0
# The advisory lock every write transaction takes (advisory locks are per database: one store per database).
WRITE_LOCK = 0x636F6E74  # "cont"

_SITUATION_FIELDS = frozenset({"reason", "eta", "note", "revision", "state", "closed_at", "closed_by", "data"})
_STEP_FIELDS = frozenset({"state", "attempts", "last_error", "next_retry_at", "started_at", "finished_at", "owner",
                          "late", "detail", "due_at"})
_STEP_FLAGS = frozenset({"late"})


class PostgresStore(AutoreplyPg, CampaignPg, UserPg):
    """A handle on a continuity store in one PostgreSQL database (see the module's docstring)."""

    def __init__(self, url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
                 on_wait: Callable[[str], None] | None = None, fence: Fence | None = None) -> None:
        """Connect (libpq reads the URL: sslmode and its other parameters pass through; the password comes
        from the URL, PGPASSWORD or PGPASSFILE) and bring the schema up to date."""
        self.url = url
        # A cluster's leader fences its writes with the epoch it leads under (pg_cluster.py); shared with the
        # handles reopen() makes, so losing the lead stops every one of them at once.
        self.fence = fence if fence is not None else Fence()
        self.label = label(url)
        # Not a file: a label for the Store protocol's `path`. It points below /dev/null so that code which
        # would open a SQLite file there (a second handle for the auto-responder) fails loudly.
        self.path = Path("/dev/null/postgresql") / self.label.replace(" on ", "@")
        self.busy_timeout = busy_timeout
        self._timeout_ms = max(1, int(busy_timeout * 1000))
        self._on_wait = on_wait
        self._told = False
        self._depth = 0
        deadline = time.monotonic() + busy_timeout
        self._conn = self._connect(OperationFailed)
        try:
            self._migrate(deadline)
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, error: type[OperationFailed] | type[StoreBusy]) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                                   connect_timeout=max(2, int(self.busy_timeout)))
        except psycopg.OperationalError as exc:
            raise error(f"cannot connect to the store {safe_url(self.url)}: {_first_line(exc)}") from None
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            # A write outside transaction() that meets a row lock waits no longer than a transaction would.
            conn.execute(f"SET lock_timeout = {self._timeout_ms}")  # (0 would mean: wait forever)
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def conn(self) -> Any:
        """The connection; one that broke (PostgreSQL restarted, the network gone) is replaced at the next use
        outside a transaction. Inside one, the transaction is lost with it and its error stands. A statement
        that finds the connection broken raises StoreUnavailable, as every other store trouble is an error of
        continuity's own family."""
        if self._conn.broken and not self._depth:
            self._conn.close()
            self._conn = self._connect(StoreUnavailable)
        return _Guarded(self._conn, self)

    def close(self) -> None:
        self._conn.close()

    def reopen(self) -> Store:
        """A second, independent connection to the same database (for a worker thread of its own)."""
        return PostgresStore(self.url, busy_timeout=self.busy_timeout, on_wait=self._on_wait, fence=self.fence)

    # schema ------------------------------------------------------------------------------------------------

    def _version(self) -> int:
        row = self.conn.execute("SELECT to_regclass(%s) AS t", (VERSION_TABLE,)).fetchone()
        if row is None or row["t"] is None:
            return 0
        row = self.conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        return int(row["version"]) if row else 0

    def _migrate(self, deadline: float) -> None:
        """Bring the schema up to date under the write lock; a current schema takes no lock at all."""
        version = self._version()
        if version > len(MIGRATIONS):
            raise OperationFailed(f"{safe_url(self.url)} has schema version {version}, newer than this continuity "
                                  f"knows ({len(MIGRATIONS)}): it was written by a newer release; upgrade continuity")
        if version == len(MIGRATIONS):
            return
        with self.transaction(deadline):
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
            version = self._version()  # another node may have migrated while this one waited for the lock
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self.conn.execute(script)
                self.conn.execute(f"DELETE FROM {VERSION_TABLE}")
                self.conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (number,))

    # transactions ----------------------------------------------------------------------------------------

    def _busy(self) -> StoreBusy:
        return StoreBusy(f"the store {self.label} is busy: another process has held it for more than "
                         f"{self.busy_timeout:g}s (store.busy_timeout); nothing was recorded, run the command again "
                         "once it is free")

    def _lock(self, deadline: float) -> None:
        """Take the write lock inside the open transaction, waiting up to the deadline (saying so once)."""
        row = self.conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS ok", (WRITE_LOCK,)).fetchone()
        if row is not None and row["ok"]:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._busy()
        if not self._told:
            self._told = True
            if self._on_wait is not None:
                self._on_wait(f"{self.label} is busy, waiting up to {self.busy_timeout:g}s…")
        self.conn.execute(f"SET LOCAL lock_timeout = {max(1, int(remaining * 1000))}")
        try:
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except pg_errors.LockNotAvailable:
            raise self._busy() from None
        self.conn.execute(f"SET LOCAL lock_timeout = {self._timeout_ms}")

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
        try:
            self.conn.execute("BEGIN")
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None
        try:
            self._lock(deadline if deadline is not None else time.monotonic() + self.busy_timeout)
            self._check_fence()
        except psycopg.OperationalError as exc:
            self._rollback()
            raise self._unavailable(exc) from None
        except BaseException:
            self._rollback()
            raise
        self._depth = 1
        try:
            yield
        except pg_errors.LockNotAvailable:
            self._depth = 0
            self._rollback()
            raise self._busy() from None
        except psycopg.OperationalError as exc:
            self._depth = 0
            self._rollback()
            raise self._unavailable(exc) from None
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.conn.execute("COMMIT")
        except psycopg.OperationalError as exc:  # whether it committed is unknown: as with a crash
            raise self._unavailable(exc) from None

    def _check_fence(self) -> None:
        """A leader's write goes through only while the lease still carries its epoch (read after the write
        lock, which the epoch's raise takes too: see pg_cluster.py)."""
        mine = self.fence.epoch
        if mine is None:
            return
        current = fence_epoch(self.conn) if mine != LOST else None
        if current != mine:
            raise Fenced("this node does not lead the cluster any more" + (
                f" (it led under epoch {mine}, the lease is at {current})" if mine != LOST else "") +
                ": nothing was recorded and nothing is sent from here")

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the store {self.label} is unreachable: {_first_line(exc)}; nothing more was "
                                "recorded, and the operation can run again once it is back")

    def leadership(self, *, node: str, vantage: str, version: str, failover: float) -> LeaderSeat | None:
        """This node's seat in the cluster of daemons on this database, fenced through this handle."""
        return Leadership(self.url, self.fence, node=node, vantage=vantage, version=version, failover=failover,
                          write_lock=WRITE_LOCK)

    def cluster_state(self) -> tuple[LeaseRow | None, list[NodeRow], datetime] | None:
        """The lease, the nodes and the database's clock now (every node's row is written by that clock)."""
        conn = self.conn
        return read_lease(conn), read_nodes(conn), db_now(conn)

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        """A transaction that is always undone: `--dry-run` replays the engine on the live database and keeps
        nothing (the store's write lock is held meanwhile, a few milliseconds, so what it reads is current)."""
        with suppress(_Undo), self.transaction():
            yield
            raise _Undo

    def _rollback(self) -> None:
        """Undo the open transaction; on a connection that broke meanwhile there is nothing left to undo, and
        the error that broke it is the one to report."""
        if self._conn.closed or self._conn.broken:
            return
        with suppress(psycopg.OperationalError):
            self._conn.execute("ROLLBACK")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the current transaction (one is opened if none is) that an exception undoes alone."""
        with self.transaction():
            self.conn.execute("SAVEPOINT op")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO SAVEPOINT op")
                self.conn.execute("RELEASE SAVEPOINT op")
                raise
            self.conn.execute("RELEASE SAVEPOINT op")

    # situations ------------------------------------------------------------------------------------------

    @staticmethod
    def _situation(row: dict[str, Any]) -> SituationRecord:
        return SituationRecord(
            id=row["id"], kind=row["kind"], channel=row["channel"], playbook=row["playbook"], state=row["state"],
            source=row["source"], opened_by=row["opened_by"], reason=row["reason"], eta=as_utc(row["eta"]),
            note=row["note"], revision=row["revision"], opened_at=req_utc(row["opened_at"]),
            closed_at=as_utc(row["closed_at"]), closed_by=row["closed_by"], data=json.loads(row["data"]),
        )

    def find_open(self, kind: str, channel: str) -> SituationRecord | None:
        row = self.conn.execute("SELECT * FROM situations WHERE kind = %s AND channel = %s AND state = 'open'",
                                (kind, channel)).fetchone()
        return self._situation(row) if row else None

    def get_situation(self, situation_id: int) -> SituationRecord | None:
        row = self.conn.execute("SELECT * FROM situations WHERE id = %s", (situation_id,)).fetchone()
        return self._situation(row) if row else None

    def open_situations(self) -> list[SituationRecord]:
        rows = self.conn.execute("SELECT * FROM situations WHERE state = 'open' ORDER BY id").fetchall()
        return [self._situation(r) for r in rows]

    def situations_since(self, since: datetime) -> list[SituationRecord]:
        rows = self.conn.execute(
            "SELECT * FROM situations WHERE opened_at >= %s OR closed_at >= %s OR state = 'open' ORDER BY id",
            (utc(since), utc(since))).fetchall()
        return [self._situation(r) for r in rows]

    def ledger_mark(self) -> tuple[int, int, int]:
        row = self.conn.execute("SELECT (SELECT MAX(id) FROM situations) AS s, (SELECT MAX(id) FROM steps) AS t,"
                                " (SELECT MAX(id) FROM events) AS e").fetchone()
        assert row is not None
        return (int(row["s"] or 0), int(row["t"] or 0), int(row["e"] or 0))

    def first_opened_at(self) -> datetime | None:
        row = self.conn.execute("SELECT MIN(opened_at) AS first FROM situations").fetchone()
        return as_utc(row["first"]) if row else None

    def insert_situation(self, *, kind: str, channel: str, playbook: str, source: str, opened_by: str,
                         reason: str, eta: datetime | None, opened_at: datetime,
                         data: dict[str, Any] | None = None) -> int:
        row = self.conn.execute(
            "INSERT INTO situations (kind, channel, playbook, state, source, opened_by, reason, eta, opened_at, data)"
            " VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s) RETURNING id",
            (kind, channel, playbook, source, opened_by, reason, utc(eta), utc(opened_at), json.dumps(data or {})),
        ).fetchone()
        assert row is not None
        return int(row["id"])

    def update_situation(self, situation_id: int, **fields: Any) -> None:
        sets, values = [], []
        for name, value in fields.items():
            if name not in _SITUATION_FIELDS:
                raise KeyError(name)
            if isinstance(value, datetime):
                value = utc(value)
            elif name == "data":
                value = json.dumps(value)
            sets.append(f"{name} = %s")
            values.append(value)
        self.conn.execute(f"UPDATE situations SET {', '.join(sets)} WHERE id = %s", (*values, situation_id))

    # steps (the ledger) ----------------------------------------------------------------------------------

    @staticmethod
    def _step(row: dict[str, Any]) -> StepRecord:
        return StepRecord(
            id=row["id"], situation_id=row["situation_id"], key=row["key"], phase=row["phase"],
            step_id=row["step_id"], occurrence=row["occurrence"], action=row["action"], sink=row["sink"],
            template=row["template"], reversible=bool(row["reversible"]), idempotent=bool(row["idempotent"]),
            every_s=row["every_s"], undo_of=row["undo_of"], due_at=req_utc(row["due_at"]), state=row["state"],
            attempts=row["attempts"], last_error=row["last_error"], next_retry_at=as_utc(row["next_retry_at"]),
            started_at=as_utc(row["started_at"]), finished_at=as_utc(row["finished_at"]), owner=row["owner"],
            late=bool(row["late"]), detail=row["detail"],
        )

    def insert_step(self, *, situation_id: int, key: str, phase: str, step_id: str, occurrence: int, action: str,
                    sink: str, template: str, reversible: bool, idempotent: bool, every_s: int | None,
                    due_at: datetime, undo_of: int | None = None, state: str = "planned") -> int | None:
        """Plan a step; a key that exists already is left alone (planning twice is harmless)."""
        row = self.conn.execute(
            "INSERT INTO steps (situation_id, key, phase, step_id, occurrence, action, sink, template, reversible,"
            " idempotent, every_s, undo_of, due_at, state) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (key) DO NOTHING RETURNING id",
            (situation_id, key, phase, step_id, occurrence, action, sink, template, bool(reversible),
             bool(idempotent), every_s, undo_of, utc(due_at), state),
        ).fetchone()
        return int(row["id"]) if row else None

    def steps_for(self, situation_id: int) -> list[StepRecord]:
        rows = self.conn.execute("SELECT * FROM steps WHERE situation_id = %s ORDER BY due_at, id",
                                 (situation_id,)).fetchall()
        return [self._step(r) for r in rows]

    def get_step(self, step_row_id: int) -> StepRecord | None:
        row = self.conn.execute("SELECT * FROM steps WHERE id = %s", (step_row_id,)).fetchone()
        return self._step(row) if row else None

    def due_steps(self, now: datetime, situation_ids: Sequence[int] | None = None) -> list[StepRecord]:
        """Planned steps whose time has come and failed steps whose retry is due, oldest first; an undo waits
        while the step it switches off is still running somewhere."""
        sql = ("SELECT s.* FROM steps s LEFT JOIN steps t ON s.undo_of = t.id"
               " WHERE ((s.state = 'planned' AND s.due_at <= %s) OR (s.state = 'failed' AND s.next_retry_at <= %s))"
               " AND (t.id IS NULL OR t.state != 'running')")
        args: list[Any] = [utc(now), utc(now)]
        if situation_ids is not None:  # = ANY of an array: an empty list matches nothing (no `IN ()`)
            sql += " AND s.situation_id = ANY(%s::bigint[])"
            args.append(list(situation_ids))
        rows = self.conn.execute(sql + " ORDER BY s.due_at, s.id", args).fetchall()
        return [self._step(r) for r in rows]

    def next_due(self) -> datetime | None:
        row = self.conn.execute(
            "SELECT MIN(t) AS t FROM (SELECT MIN(due_at) AS t FROM steps WHERE state = 'planned'"
            " UNION ALL SELECT MIN(next_retry_at) FROM steps WHERE state = 'failed') AS d").fetchone()
        return as_utc(row["t"]) if row else None

    def pending_steps(self) -> list[StepRecord]:
        rows = self.conn.execute(
            "SELECT * FROM steps WHERE state = 'planned' OR (state = 'failed' AND next_retry_at IS NOT NULL)"
            " ORDER BY id").fetchall()
        return [self._step(r) for r in rows]

    def running_steps(self) -> list[StepRecord]:
        rows = self.conn.execute("SELECT * FROM steps WHERE state = 'running' ORDER BY id").fetchall()
        return [self._step(r) for r in rows]

    def set_step(self, step_row_id: int, *, expect: Sequence[str] | None = None, **fields: Any) -> bool:
        """Update a ledger row; with `expect`, only if it is still in one of those states (a claim: the row
        lock makes a concurrent claimer wait and then find the state changed)."""
        sets, values = [], []
        for name, value in fields.items():
            if name not in _STEP_FIELDS:
                raise KeyError(name)
            if isinstance(value, datetime):
                value = utc(value)
            elif name in _STEP_FLAGS:
                value = bool(value)
            sets.append(f"{name} = %s")
            values.append(value)
        sql = f"UPDATE steps SET {', '.join(sets)} WHERE id = %s"
        values.append(step_row_id)
        if expect is not None:
            if not expect:  # no state is expected: nothing can match (a guard built from data may be empty)
                return False
            sql += " AND state = ANY(%s::text[])"
            values.append(list(expect))
        return bool(self.conn.execute(sql, values).rowcount == 1)

    # timeline --------------------------------------------------------------------------------------------

    def add_event(self, situation_id: int, at: datetime, kind: str, message: str) -> None:
        self.conn.execute("INSERT INTO events (situation_id, at, kind, message) VALUES (%s, %s, %s, %s)",
                          (situation_id, utc(at), kind, message))

    def events_for(self, situation_id: int) -> list[EventRecord]:
        rows = self.conn.execute("SELECT * FROM events WHERE situation_id = %s ORDER BY id",
                                 (situation_id,)).fetchall()
        return [EventRecord(r["id"], r["situation_id"], req_utc(r["at"]), r["kind"], r["message"]) for r in rows]

    # send marks ------------------------------------------------------------------------------------------

    def send_marks(self, key: str) -> dict[str, tuple[str, str]]:
        rows = self.conn.execute("SELECT part, state, detail FROM send_marks WHERE key = %s", (key,)).fetchall()
        return {r["part"]: (r["state"], r["detail"]) for r in rows}

    def set_send_mark(self, key: str, part: str, state: str | None, at: datetime, detail: str = "") -> None:
        """Record a part's state durably (its own transaction unless inside one); None forgets the part."""
        with self.transaction():
            if state is None:
                self.conn.execute("DELETE FROM send_marks WHERE key = %s AND part = %s", (key, part))
            else:
                self.conn.execute(
                    "INSERT INTO send_marks (key, part, state, at, detail) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (key, part) DO UPDATE SET state = excluded.state, at = excluded.at,"
                    " detail = excluded.detail", (key, part, state, utc(at), detail))

    def settle_send_marks(self, key: str, sent: bool, at: datetime) -> int:
        if sent:
            cur = self.conn.execute(
                "UPDATE send_marks SET state = 'sent', at = %s WHERE key = %s AND state = 'ending'", (utc(at), key))
        else:
            cur = self.conn.execute("DELETE FROM send_marks WHERE key = %s AND state = 'ending'", (key,))
        return int(cur.rowcount)

    # maintenance windows ---------------------------------------------------------------------------------

    @staticmethod
    def _maintenance(row: dict[str, Any]) -> MaintenanceRecord:
        return MaintenanceRecord(
            id=row["id"], channel=row["channel"], starts_at=req_utc(row["starts_at"]),
            ends_at=req_utc(row["ends_at"]), notice_s=row["notice_s"], reason=row["reason"], state=row["state"],
            situation_id=row["situation_id"], created_by=row["created_by"], created_at=req_utc(row["created_at"]),
        )

    def insert_maintenance(self, *, channel: str, starts_at: datetime, ends_at: datetime, notice_s: int,
                           reason: str, created_by: str, created_at: datetime) -> int:
        row = self.conn.execute(
            "INSERT INTO maintenance (channel, starts_at, ends_at, notice_s, reason, state, created_by, created_at)"
            " VALUES (%s, %s, %s, %s, %s, 'scheduled', %s, %s) RETURNING id",
            (channel, utc(starts_at), utc(ends_at), notice_s, reason, created_by, utc(created_at))).fetchone()
        assert row is not None
        return int(row["id"])

    def maintenance(self, include_ended: bool = False) -> list[MaintenanceRecord]:
        sql = "SELECT * FROM maintenance"
        if not include_ended:
            sql += " WHERE state IN ('scheduled', 'announced', 'active')"
        return [self._maintenance(r) for r in self.conn.execute(sql + " ORDER BY starts_at, id").fetchall()]

    def get_maintenance(self, window_id: int) -> MaintenanceRecord | None:
        row = self.conn.execute("SELECT * FROM maintenance WHERE id = %s", (window_id,)).fetchone()
        return self._maintenance(row) if row else None

    def set_maintenance(self, window_id: int, *, state: str, situation_id: int | None = None) -> None:
        self.conn.execute(
            "UPDATE maintenance SET state = %s, situation_id = COALESCE(%s::bigint, situation_id) WHERE id = %s",
            (state, situation_id, window_id))


class _Undo(Exception):  # noqa: N818 (not an error: the way out of rolled_back's transaction)
    pass


class _Guarded:
    """A connection whose `execute` turns a lost connection into StoreUnavailable (other errors, a lock
    timeout among them, pass as they are: the transaction code tells them apart)."""

    def __init__(self, conn: psycopg.Connection[Any], store: PostgresStore) -> None:
        self._raw = conn
        self._store = store

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._raw.execute(*args, **kwargs)
        except psycopg.OperationalError as exc:
            if self._raw.broken:
                raise self._store._unavailable(exc) from None  # noqa: SLF001 (the store's own helper)
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["DEFAULT_BUSY_TIMEOUT", "PostgresStore"]
