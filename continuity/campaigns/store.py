"""Campaign runs and their versions in the store (tables of migration 4).

A run is one occurrence of a campaign on the calendar (a recurring campaign has one run per year); a version
is a snapshot of the campaign file as registered or updated. Runs point at the version they use, so what
staff and customers see only changes through `campaign update`, which records what changed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from continuity.store.sqlite import SqliteStore, from_ts, ts

# Run states and the moves between them (the rules as data):
#   registered ─opens_at─► briefed ─start─► live ─end─► ended      (a recurring run then plans the next one)
#       │                     │              └─cancel─► cancelled
#       └────────cancel───────┴─────────────► cancelled
#   registered ─end passed before it could open (nothing ran)─► ended
ACTIVE = ("registered", "briefed", "live")
TRANSITIONS: dict[str, frozenset[str]] = {
    "registered": frozenset({"briefed", "cancelled", "ended"}),
    "briefed": frozenset({"live", "cancelled", "ended"}),
    "live": frozenset({"ended", "cancelled"}),
    "ended": frozenset(),
    "cancelled": frozenset(),
}


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


def _dt(text: str) -> datetime:
    value = from_ts(text)
    assert value is not None
    return value


def _run(row: sqlite3.Row) -> CampaignRun:
    return CampaignRun(
        id=row["id"], name=row["name"], run=row["run"], version=row["version"], state=row["state"],
        starts_at=_dt(row["starts_at"]), ends_at=_dt(row["ends_at"]), opens_at=_dt(row["opens_at"]),
        situation_id=row["situation_id"], created_by=row["created_by"], created_at=_dt(row["created_at"]),
        updated_at=_dt(row["updated_at"]),
    )


def runs(store: SqliteStore, *, include_finished: bool = False, name: str | None = None) -> list[CampaignRun]:
    sql, args = "SELECT * FROM campaigns WHERE 1 = 1", list[str]()
    if not include_finished:
        sql += f" AND state IN ({','.join('?' * len(ACTIVE))})"
        args.extend(ACTIVE)
    if name is not None:
        sql += " AND name = ?"
        args.append(name)
    return [_run(r) for r in store.conn.execute(sql + " ORDER BY starts_at, id", args).fetchall()]


def latest_run(store: SqliteStore, name: str) -> CampaignRun | None:
    row = store.conn.execute("SELECT * FROM campaigns WHERE name = ? ORDER BY run DESC LIMIT 1", (name,)).fetchone()
    return _run(row) if row else None


def get_run(store: SqliteStore, run_id: int) -> CampaignRun | None:
    row = store.conn.execute("SELECT * FROM campaigns WHERE id = ?", (run_id,)).fetchone()
    return _run(row) if row else None


def insert_run(store: SqliteStore, *, name: str, run: int, version: int, starts_at: datetime, ends_at: datetime,
               opens_at: datetime, created_by: str, created_at: datetime) -> int:
    cur = store.conn.execute(
        "INSERT INTO campaigns (name, run, version, state, starts_at, ends_at, opens_at, created_by, created_at,"
        " updated_at) VALUES (?, ?, ?, 'registered', ?, ?, ?, ?, ?, ?)",
        (name, run, version, ts(starts_at), ts(ends_at), ts(opens_at), created_by, ts(created_at), ts(created_at)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def set_run(store: SqliteStore, run_id: int, *, at: datetime, expect: tuple[str, ...] | None = None,
            **fields: Any) -> bool:
    """Update a run; with `expect`, only while it is still in one of those states (two processes advancing
    the same clock move it once)."""
    allowed = {"state", "version", "starts_at", "ends_at", "opens_at", "situation_id"}
    sets, values = ["updated_at = ?"], list[Any]([ts(at)])
    for key, value in fields.items():
        if key not in allowed:
            raise KeyError(key)
        sets.append(f"{key} = ?")
        values.append(ts(value) if isinstance(value, datetime) else value)
    sql = f"UPDATE campaigns SET {', '.join(sets)} WHERE id = ?"
    values.append(run_id)
    if expect:
        sql += f" AND state IN ({','.join('?' * len(expect))})"
        values.extend(expect)
    return store.conn.execute(sql, values).rowcount == 1


def insert_version(store: SqliteStore, *, name: str, created_by: str, created_at: datetime, source: str,
                   snapshot: dict[str, Any], changes: list[str]) -> int:
    """Store a new snapshot; returns its version number (1, 2, … per campaign name)."""
    row = store.conn.execute("SELECT COALESCE(MAX(version), 0) FROM campaign_versions WHERE name = ?",
                             (name,)).fetchone()
    version = int(row[0]) + 1
    store.conn.execute(
        "INSERT INTO campaign_versions (name, version, created_at, created_by, source, snapshot, changes)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (name, version, ts(created_at), created_by, source, json.dumps(snapshot, ensure_ascii=False),
         json.dumps(changes, ensure_ascii=False)),
    )
    return version


def _version(row: sqlite3.Row) -> CampaignVersion:
    return CampaignVersion(name=row["name"], version=row["version"], created_at=_dt(row["created_at"]),
                           created_by=row["created_by"], source=row["source"], snapshot=json.loads(row["snapshot"]),
                           changes=json.loads(row["changes"]))


def get_version(store: SqliteStore, name: str, version: int) -> CampaignVersion:
    row = store.conn.execute("SELECT * FROM campaign_versions WHERE name = ? AND version = ?",
                             (name, version)).fetchone()
    assert row is not None, f"campaign {name} has no version {version}"
    return _version(row)


def versions(store: SqliteStore, name: str) -> list[CampaignVersion]:
    rows = store.conn.execute("SELECT * FROM campaign_versions WHERE name = ? ORDER BY version", (name,)).fetchall()
    return [_version(r) for r in rows]
