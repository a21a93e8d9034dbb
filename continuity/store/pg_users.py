"""The console's users, sessions and failed sign-ins on PostgreSQL: continuity/store/users.py's statements in
PostgreSQL's SQL, as a mixin of PostgresStore (the records and their meaning are users.py's)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from continuity.store.pg_values import req_utc, utc
from continuity.store.users import SessionRecord, UserRecord


def _user(row: dict[str, Any]) -> UserRecord:
    return UserRecord(name=row["name"], role=row["role"], password_hash=row["password_hash"],
                      created_at=req_utc(row["created_at"]), updated_at=req_utc(row["updated_at"]))


def _session(row: dict[str, Any]) -> SessionRecord:
    return SessionRecord(id_hash=row["id_hash"], user_name=row["user_name"], csrf=row["csrf"],
                         created_at=req_utc(row["created_at"]), expires_at=req_utc(row["expires_at"]))


class UserPg:
    """The console's statements; mixed into `PostgresStore`, which provides `conn`."""

    conn: Any

    def add_user(self, *, name: str, role: str, password_hash: str, at: datetime) -> None:
        self.conn.execute("INSERT INTO console_users (name, role, password_hash, created_at, updated_at)"
                          " VALUES (%s, %s, %s, %s, %s)", (name, role, password_hash, utc(at), utc(at)))

    def get_user(self, name: str) -> UserRecord | None:
        row = self.conn.execute("SELECT * FROM console_users WHERE name = %s", (name,)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[UserRecord]:
        rows = self.conn.execute('SELECT * FROM console_users ORDER BY name COLLATE "C"').fetchall()
        return [_user(r) for r in rows]

    def remove_user(self, name: str) -> bool:
        self.conn.execute("DELETE FROM console_sessions WHERE user_name = %s", (name,))
        return bool(self.conn.execute("DELETE FROM console_users WHERE name = %s", (name,)).rowcount == 1)

    def set_user_password(self, name: str, password_hash: str, at: datetime) -> bool:
        self.conn.execute("DELETE FROM console_sessions WHERE user_name = %s", (name,))
        return bool(self.conn.execute("UPDATE console_users SET password_hash = %s, updated_at = %s WHERE name = %s",
                                      (password_hash, utc(at), name)).rowcount == 1)

    def insert_session(self, *, id_hash: str, user_name: str, csrf: str, created_at: datetime,
                       expires_at: datetime) -> None:
        self.conn.execute("INSERT INTO console_sessions (id_hash, user_name, csrf, created_at, expires_at)"
                          " VALUES (%s, %s, %s, %s, %s)", (id_hash, user_name, csrf, utc(created_at), utc(expires_at)))

    def get_session(self, id_hash: str, now: datetime) -> SessionRecord | None:
        row = self.conn.execute("SELECT * FROM console_sessions WHERE id_hash = %s AND expires_at > %s",
                                (id_hash, utc(now))).fetchone()
        return _session(row) if row else None

    def delete_session(self, id_hash: str) -> None:
        self.conn.execute("DELETE FROM console_sessions WHERE id_hash = %s", (id_hash,))

    def purge_console(self, now: datetime, failures_before: datetime) -> int:
        self.conn.execute("DELETE FROM console_failures WHERE at < %s", (utc(failures_before),))
        return int(self.conn.execute("DELETE FROM console_sessions WHERE expires_at <= %s", (utc(now),)).rowcount)

    def add_login_failure(self, *, user_name: str, address: str, at: datetime) -> None:
        self.conn.execute("INSERT INTO console_failures (user_name, address, at) VALUES (%s, %s, %s)",
                          (user_name, address, utc(at)))

    def login_failures(self, *, user_name: str, address: str, since: datetime) -> int:
        row = self.conn.execute("SELECT COUNT(*) AS n FROM console_failures WHERE user_name = %s AND address = %s"
                                " AND at >= %s", (user_name, address, utc(since))).fetchone()
        return int(row["n"])

    def clear_login_failures(self, *, user_name: str, address: str) -> None:
        self.conn.execute("DELETE FROM console_failures WHERE user_name = %s AND address = %s", (user_name, address))
