"""Campaign runs and their versions on PostgreSQL: continuity/store/campaigns.py's statements in PostgreSQL's SQL.

A mixin of PostgresStore (see continuity/store/autoreply.py for why a mixin). Every write joins the caller's
transaction; `insert_campaign_version` reads and writes the number in two statements, so it is called inside
`transaction()`, whose write lock makes the pair atomic across processes as on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from continuity.store.campaigns import RUN_FIELDS, CampaignRun, CampaignVersion
from continuity.store.pg_values import req_utc, utc


def _run(row: dict[str, Any]) -> CampaignRun:
    return CampaignRun(
        id=row["id"], name=row["name"], run=row["run"], version=row["version"], state=row["state"],
        starts_at=req_utc(row["starts_at"]), ends_at=req_utc(row["ends_at"]), opens_at=req_utc(row["opens_at"]),
        situation_id=row["situation_id"], created_by=row["created_by"], created_at=req_utc(row["created_at"]),
        updated_at=req_utc(row["updated_at"]),
    )


def _version(row: dict[str, Any]) -> CampaignVersion:
    return CampaignVersion(name=row["name"], version=row["version"], created_at=req_utc(row["created_at"]),
                           created_by=row["created_by"], source=row["source"], snapshot=json.loads(row["snapshot"]),
                           changes=json.loads(row["changes"]))


class CampaignPg:
    """The campaign registry's statements; mixed into `PostgresStore`, which provides `conn`."""

    conn: Any

    def campaign_runs(self, *, states: Sequence[str] | None = None, name: str | None = None) -> list[CampaignRun]:
        sql, args = "SELECT * FROM campaigns WHERE true", list[Any]()
        if states is not None:
            sql += " AND state = ANY(%s::text[])"
            args.append(list(states))
        if name is not None:
            sql += " AND name = %s"
            args.append(name)
        return [_run(r) for r in self.conn.execute(sql + " ORDER BY starts_at, id", args).fetchall()]

    def latest_campaign_run(self, name: str) -> CampaignRun | None:
        row = self.conn.execute("SELECT * FROM campaigns WHERE name = %s ORDER BY run DESC LIMIT 1",
                                (name,)).fetchone()
        return _run(row) if row else None

    def get_campaign_run(self, run_id: int) -> CampaignRun | None:
        row = self.conn.execute("SELECT * FROM campaigns WHERE id = %s", (run_id,)).fetchone()
        return _run(row) if row else None

    def insert_campaign_run(self, *, name: str, run: int, version: int, starts_at: datetime, ends_at: datetime,
                            opens_at: datetime, created_by: str, created_at: datetime) -> int:
        row = self.conn.execute(
            "INSERT INTO campaigns (name, run, version, state, starts_at, ends_at, opens_at, created_by, created_at,"
            " updated_at) VALUES (%s, %s, %s, 'registered', %s, %s, %s, %s, %s, %s) RETURNING id",
            (name, run, version, utc(starts_at), utc(ends_at), utc(opens_at), created_by, utc(created_at),
             utc(created_at))).fetchone()
        assert row is not None
        return int(row["id"])

    def set_campaign_run(self, run_id: int, *, at: datetime, expect: Sequence[str] | None = None,
                         **fields: Any) -> bool:
        sets, values = ["updated_at = %s"], list[Any]([utc(at)])
        for key, value in fields.items():
            if key not in RUN_FIELDS:
                raise KeyError(key)
            sets.append(f"{key} = %s")
            values.append(utc(value) if isinstance(value, datetime) else value)
        sql = f"UPDATE campaigns SET {', '.join(sets)} WHERE id = %s"
        values.append(run_id)
        if expect is not None:
            if not expect:  # no state is expected: nothing can match
                return False
            sql += " AND state = ANY(%s::text[])"
            values.append(list(expect))
        return bool(self.conn.execute(sql, values).rowcount == 1)

    def insert_campaign_version(self, *, name: str, created_by: str, created_at: datetime, source: str,
                                snapshot: dict[str, Any], changes: list[str]) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM campaign_versions WHERE name = %s",
                                (name,)).fetchone()
        version = int(row["v"]) + 1
        self.conn.execute(
            "INSERT INTO campaign_versions (name, version, created_at, created_by, source, snapshot, changes)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (name, version, utc(created_at), created_by, source, json.dumps(snapshot, ensure_ascii=False),
             json.dumps(changes, ensure_ascii=False)))
        return version

    def get_campaign_version(self, name: str, version: int) -> CampaignVersion | None:
        row = self.conn.execute("SELECT * FROM campaign_versions WHERE name = %s AND version = %s",
                                (name, version)).fetchone()
        return _version(row) if row else None

    def campaign_versions(self, name: str) -> list[CampaignVersion]:
        rows = self.conn.execute("SELECT * FROM campaign_versions WHERE name = %s ORDER BY version",
                                 (name,)).fetchall()
        return [_version(r) for r in rows]
