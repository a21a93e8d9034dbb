"""Campaign runs and their versions (tables of migration 4), as methods of the store.

Only the SQL and the row records live here; the run states' rules (which moves are allowed, when a run
advances, what a version snapshot holds) are continuity/campaigns/, whose `store.py` keeps its functions as
thin wrappers over these methods and re-exports the records.

A mixin that `SqliteStore` inherits, for the reason given in continuity/store/autoreply.py: one store
object, one flat `Store` protocol, the store's own connection and transaction depth without forwarding.
Every write joins the caller's transaction: registering a campaign writes a version and a run together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from continuity.store.times import required_ts as _dt
from continuity.store.times import ts

# The states of a run that is still to happen or happening (continuity/campaigns/store.py has the moves).
ACTIVE = ("registered", "briefed", "live")


@dataclass
class CampaignRun:
    id: int
    name: str
    run: int
    version: int
    state: str
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime
    situation_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass
class CampaignVersion:
    name: str
    version: int
    created_at: datetime
    created_by: str
    source: str
    snapshot: dict[str, Any]
    changes: list[str]



def _run(row: sqlite3.Row) -> CampaignRun:
    return CampaignRun(
        id=row["id"], name=row["name"], run=row["run"], version=row["version"], state=row["state"],
        starts_at=_dt(row["starts_at"]), ends_at=_dt(row["ends_at"]), opens_at=_dt(row["opens_at"]),
        situation_id=row["situation_id"], created_by=row["created_by"], created_at=_dt(row["created_at"]),
        updated_at=_dt(row["updated_at"]),
    )


def _version(row: sqlite3.Row) -> CampaignVersion:
    return CampaignVersion(name=row["name"], version=row["version"], created_at=_dt(row["created_at"]),
                           created_by=row["created_by"], source=row["source"], snapshot=json.loads(row["snapshot"]),
                           changes=json.loads(row["changes"]))


# The columns `set_campaign_run` may change (anything else is a programming error, not SQL).
RUN_FIELDS = frozenset({"state", "version", "starts_at", "ends_at", "opens_at", "situation_id"})


class CampaignSql:
    """The campaign registry's statements; mixed into `SqliteStore`, which provides `conn`."""

    conn: sqlite3.Connection

    # runs --------------------------------------------------------------------------------------------------

    def campaign_runs(self, *, states: Sequence[str] | None = None, name: str | None = None) -> list[CampaignRun]:
        """Runs (of campaign `name`, in one of `states`; None: any), by start and then id."""
        sql, args = "SELECT * FROM campaigns WHERE 1 = 1", list[str]()
        if states is not None:
            sql += f" AND state IN ({','.join('?' * len(states)) or 'NULL'})"
            args.extend(states)
        if name is not None:
            sql += " AND name = ?"
            args.append(name)
        return [_run(r) for r in self.conn.execute(sql + " ORDER BY starts_at, id", args).fetchall()]

    def latest_campaign_run(self, name: str) -> CampaignRun | None:
        """The run of campaign `name` with the highest run number, in any state."""
        row = self.conn.execute("SELECT * FROM campaigns WHERE name = ? ORDER BY run DESC LIMIT 1",
                                (name,)).fetchone()
        return _run(row) if row else None

    def get_campaign_run(self, run_id: int) -> CampaignRun | None:
        """The run with this id, or None."""
        row = self.conn.execute("SELECT * FROM campaigns WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def insert_campaign_run(self, *, name: str, run: int, version: int, starts_at: datetime, ends_at: datetime,
                            opens_at: datetime, created_by: str, created_at: datetime) -> int:
        """Add run number `run` of `name` in state `registered` (updated_at = created_at); returns its id. A
        (name, run) that exists already is an integrity error."""
        cur = self.conn.execute(
            "INSERT INTO campaigns (name, run, version, state, starts_at, ends_at, opens_at, created_by, created_at,"
            " updated_at) VALUES (?, ?, ?, 'registered', ?, ?, ?, ?, ?, ?)",
            (name, run, version, ts(starts_at), ts(ends_at), ts(opens_at), created_by, ts(created_at),
             ts(created_at)),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_campaign_run(self, run_id: int, *, at: datetime, expect: Sequence[str] | None = None,
                         **fields: Any) -> bool:
        """Update a run's RUN_FIELDS (KeyError for any other) and its updated_at; with `expect`, only while it
        is still in one of those states (two processes advancing the same clock move it once). True if the
        row changed."""
        sets, values = ["updated_at = ?"], list[Any]([ts(at)])
        for key, value in fields.items():
            if key not in RUN_FIELDS:
                raise KeyError(key)
            sets.append(f"{key} = ?")
            values.append(ts(value) if isinstance(value, datetime) else value)
        sql = f"UPDATE campaigns SET {', '.join(sets)} WHERE id = ?"
        values.append(run_id)
        if expect is not None:
            if not expect:  # no state is expected: nothing can match
                return False
            sql += f" AND state IN ({','.join('?' * len(expect))})"
            values.extend(expect)
        return self.conn.execute(sql, values).rowcount == 1

    # versions ----------------------------------------------------------------------------------------------

    def insert_campaign_version(self, *, name: str, created_by: str, created_at: datetime, source: str,
                                snapshot: dict[str, Any], changes: list[str]) -> int:
        """Store the next snapshot of `name`; returns its number (1, 2, … per name, never reused). Call it in
        a transaction: the number is read and written in two statements."""
        row = self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM campaign_versions WHERE name = ?",
                                (name,)).fetchone()
        version = int(row[0]) + 1
        self.conn.execute(
            "INSERT INTO campaign_versions (name, version, created_at, created_by, source, snapshot, changes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, version, ts(created_at), created_by, source, json.dumps(snapshot, ensure_ascii=False),
             json.dumps(changes, ensure_ascii=False)),
        )
        return version

    def get_campaign_version(self, name: str, version: int) -> CampaignVersion | None:
        """Snapshot number `version` of `name`, or None."""
        row = self.conn.execute("SELECT * FROM campaign_versions WHERE name = ? AND version = ?",
                                (name, version)).fetchone()
        return _version(row) if row else None

    def campaign_versions(self, name: str) -> list[CampaignVersion]:
        """Every snapshot of `name`, oldest first."""
        rows = self.conn.execute("SELECT * FROM campaign_versions WHERE name = ? ORDER BY version",
                                 (name,)).fetchall()
        return [_version(r) for r in rows]
