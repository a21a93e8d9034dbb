"""Leadership of a cluster of daemons on one PostgreSQL database, and the fence that makes a split brain
impossible rather than unlikely.

Two things together:

- **An advisory lock** (`LEADER_LOCK`, session-level) held on a connection of its own. PostgreSQL gives it to
  one session at a time and drops it the moment that session ends: a SIGKILLed leader's socket closes, its
  backend exits, the next node's `pg_try_advisory_lock` succeeds. A leader that is paused (a frozen VM) keeps
  its session alive, so the lease row below says how long ago it last renewed; a node that finds the lease
  older than `cluster.failover` ends the holder's session (`pg_terminate_backend`) and takes the lock.
- **A lease row with a fencing epoch** (`cluster_lease`). Whoever takes the lock raises the epoch by one, inside
  a write transaction of the store (which every write of every process takes first: postgres.py's
  WRITE_LOCK). The leader's store handle carries that epoch in its `Fence`, and every write transaction of a
  fenced handle (each step claim, each ledger record, each auto-reply mark) reads the lease right after
  taking WRITE_LOCK and is refused when the epoch moved on. Writes and the epoch's raise are thus in one total
  order: a write of the old leader either committed before the new epoch existed, or sees it and records
  nothing. A node that loses its lock (or cannot tell) sets its fence to `LOST`, which no epoch matches.

The cluster's tables are not part of the store's numbered schema (SQLite has no cluster, and `store copy`
moves history, not who leads): they are created here, idempotently, under the same write lock.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from continuity.store.pg_values import as_utc, req_utc
from continuity.store.records import Fence, LeaseRow, NodeRow, SharedObservation

LEADER_LOCK = 0x6C656164  # "lead"
LOST = -1  # a fence no epoch matches: the handle records nothing until it leads again

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_lease (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL,
    leader TEXT,
    pid INTEGER,
    since TIMESTAMPTZ,
    renewed_at TIMESTAMPTZ
);
INSERT INTO cluster_lease (id, epoch) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS cluster_nodes (
    name TEXT PRIMARY KEY,
    vantage TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_observations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node TEXT NOT NULL,
    vantage TEXT NOT NULL,
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    results TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
"""
_TABLES = ("cluster_lease", "cluster_nodes", "cluster_observations")
# Observations are for the leader's next vote, not history: older ones are dropped now and then.
KEEP_OBSERVATIONS = "5 minutes"


def ensure_schema(conn: psycopg.Connection[Any], write_lock: int) -> None:
    """Create the cluster's tables once, under the store's write lock (two nodes starting at once)."""
    if _has_tables(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (write_lock,))
        conn.execute(SCHEMA)


def _has_tables(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT " + ", ".join(f"to_regclass('{t}') IS NOT NULL AS {t}" for t in _TABLES)).fetchone()
    return bool(row and all(row[t] for t in _TABLES))


def fence_epoch(conn: psycopg.Connection[Any]) -> int | None:
    """The lease's epoch, read inside a write transaction (after WRITE_LOCK); None without a lease."""
    row = conn.execute("SELECT epoch FROM cluster_lease WHERE id = 1").fetchone()
    return int(row["epoch"]) if row else None


def read_lease(conn: psycopg.Connection[Any]) -> LeaseRow | None:
    if not _has_tables(conn):
        return None
    row = conn.execute(
        "SELECT l.epoch, l.leader, l.since, l.renewed_at,"
        " EXISTS (SELECT 1 FROM pg_locks k WHERE k.locktype = 'advisory' AND k.granted"
        "         AND k.objid = %s AND k.database = (SELECT oid FROM pg_database"
        "                                              WHERE datname = current_database())) AS held"
        " FROM cluster_lease l WHERE l.id = 1", (LEADER_LOCK,)).fetchone()
    if row is None:
        return None
    return LeaseRow(int(row["epoch"]), row["leader"], as_utc(row["since"]), as_utc(row["renewed_at"]),
                    bool(row["held"]))


def read_nodes(conn: psycopg.Connection[Any]) -> list[NodeRow]:
    if not _has_tables(conn):
        return []
    rows = conn.execute("SELECT * FROM cluster_nodes ORDER BY name").fetchall()
    return [NodeRow(r["name"], r["vantage"], r["version"], req_utc(r["started_at"]), req_utc(r["last_seen"]))
            for r in rows]


def db_now(conn: psycopg.Connection[Any]) -> datetime:
    row = conn.execute("SELECT clock_timestamp() AS t").fetchone()
    assert row is not None
    return req_utc(row["t"])


class Leadership:
    """One node's seat in the cluster: `poll()` (every second or so, from a thread) tries to lead, or renews
    the lease while leading, and keeps the node's row fresh. The epoch it leads under goes into `fence`.

    Every database call is on the connection of its own that holds the lock; when that connection breaks
    (PostgreSQL restarted or unreachable), the lock is gone with it and `poll()` says so: the fence becomes
    LOST at once, and a later poll reconnects and competes again."""

    clustered = True

    def __init__(self, url: str, fence: Fence, *, node: str, vantage: str, version: str, failover: float,
                 write_lock: int, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.fence = fence
        self.node = node
        self.vantage = vantage
        self.version = version
        self.failover = failover
        self.write_lock = write_lock
        self.connect_timeout = connect_timeout
        self.epoch: int | None = None  # the epoch this node leads under, None while following
        self.started_at: datetime | None = None
        self.conn: psycopg.Connection[Any] | None = None
        self.last_error: str | None = None
        self.nodes_alive = 1  # nodes whose row was touched lately, this one included (for /metrics)
        # Other nodes' observations since the last poll, for the leader's votes (empty while following).
        self.incoming: list[SharedObservation] = []
        self._seen: int | None = None  # the last observation id read (None: not read yet: skip the backlog)
        self._polls = 0

    # connection ------------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self._drop()
        conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row,
                               connect_timeout=max(2, int(self.connect_timeout)))
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            # A lease update that meets a lock never hangs the poll: it fails and the next poll tries again.
            conn.execute(f"SET lock_timeout = {int(self.failover * 500)}")
            # The kernel tells a dead database sooner than the default two hours.
            conn.execute("SET tcp_keepalives_idle = 5")
            conn.execute("SET tcp_keepalives_interval = 2")
            conn.execute("SET tcp_keepalives_count = 2")
            ensure_schema(conn, self.write_lock)
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        return conn

    def _drop(self) -> None:
        if self.conn is not None:
            with suppress(Exception):
                self.conn.close()
        self.conn = None

    # polling ---------------------------------------------------------------------------------------------

    def poll(self, outgoing: list[SharedObservation] | None = None) -> int | None:
        """One round: share this node's observations, lead (or keep leading) if possible and, leading, take
        in what the other nodes saw (`incoming`). Returns the epoch led under, or None."""
        self.incoming = []
        try:
            conn = self._connect()
            now = db_now(conn)
            if self.started_at is None:
                self.started_at = now
            conn.execute(
                "INSERT INTO cluster_nodes (name, vantage, version, started_at, last_seen)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET vantage = excluded.vantage,"
                " version = excluded.version, started_at = excluded.started_at, last_seen = excluded.last_seen",
                (self.node, self.vantage, self.version, self.started_at, now))
            if self.epoch is not None:
                self._renew(conn)
            else:
                self._compete(conn)
            row = conn.execute("SELECT count(*) AS n FROM cluster_nodes"
                               " WHERE last_seen > clock_timestamp() - interval '15 seconds'").fetchone()
            self.nodes_alive = int(row["n"]) if row else 1
            self._exchange(conn, outgoing or [])
            self.last_error = None
        except psycopg.Error as exc:
            self.last_error = _first_line(exc)
            self._lose()
            self._drop()
        return self.epoch

    def _exchange(self, conn: psycopg.Connection[Any], outgoing: list[SharedObservation]) -> None:
        """Write this node's observations; the leader reads the others' (in order, each once)."""
        import json

        if outgoing:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO cluster_observations (node, vantage, channel, status, reason, results, at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(o.node, o.vantage, o.channel, o.status, o.reason[:500], json.dumps(o.results), o.at)
                     for o in outgoing])
        if self._seen is None or self.epoch is None:  # following: keep up, so a new leader reads only news
            row = conn.execute("SELECT COALESCE(MAX(id), 0) AS n FROM cluster_observations").fetchone()
            self._seen = int(row["n"]) if row else 0
            return
        rows = conn.execute("SELECT * FROM cluster_observations WHERE id > %s AND node <> %s ORDER BY id",
                            (self._seen, self.node)).fetchall()
        if rows:
            self._seen = int(rows[-1]["id"])
        self.incoming = [SharedObservation(r["node"], r["vantage"], r["channel"], r["status"], r["reason"],
                                           json.loads(r["results"]), req_utc(r["at"])) for r in rows]
        self._polls += 1
        if self._polls % 60 == 0:
            conn.execute(f"DELETE FROM cluster_observations WHERE at < clock_timestamp() - interval "
                         f"'{KEEP_OBSERVATIONS}'")

    def _renew(self, conn: psycopg.Connection[Any]) -> None:
        cur = conn.execute("UPDATE cluster_lease SET renewed_at = clock_timestamp()"
                           " WHERE id = 1 AND epoch = %s AND pid = pg_backend_pid()", (self.epoch,))
        if cur.rowcount != 1:  # someone else raised the epoch: this node was taken for dead
            self._lose()
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock_all()")

    def _compete(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LEADER_LOCK,)).fetchone()
        if row is None or not row["ok"]:
            self._unseat_frozen(conn)
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.write_lock,))
            lease = conn.execute(
                "UPDATE cluster_lease SET epoch = epoch + 1, leader = %s, pid = pg_backend_pid(),"
                " since = clock_timestamp(), renewed_at = clock_timestamp() WHERE id = 1 RETURNING epoch",
                (self.node,)).fetchone()
        assert lease is not None
        self.epoch = int(lease["epoch"])
        self.fence.epoch = self.epoch

    def _unseat_frozen(self, conn: psycopg.Connection[Any]) -> None:
        """The lock is held, but its holder has not renewed for `failover` seconds (a paused VM, a wedged
        process): end its session so its lock goes, and compete at the next poll. Its writes are fenced by
        the epoch this node will raise, whatever that session does meanwhile."""
        row = conn.execute(
            "SELECT pid, EXTRACT(EPOCH FROM clock_timestamp() - renewed_at) AS age FROM cluster_lease"
            " WHERE id = 1").fetchone()
        if row is None or row["pid"] is None or row["age"] is None or float(row["age"]) <= self.failover:
            return
        conn.execute("SELECT pg_terminate_backend(l.pid) FROM pg_locks l WHERE l.locktype = 'advisory'"
                     " AND l.granted AND l.objid = %s AND l.pid = %s", (LEADER_LOCK, row["pid"]))

    def _lose(self) -> None:
        if self.epoch is not None or self.fence.epoch is not None:
            self.fence.epoch = LOST
        self.epoch = None

    def release(self) -> None:
        """Give the lead up (a clean stop): the next node takes over at its next poll."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            with suppress(psycopg.Error):
                self.conn.execute("SELECT pg_advisory_unlock_all()")
                self.conn.execute("DELETE FROM cluster_nodes WHERE name = %s", (self.node,))
        self._lose()
        self._drop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["LEADER_LOCK", "LOST", "Fence", "LeaseRow", "Leadership", "NodeRow", "SharedObservation", "read_lease",
           "read_nodes"]
