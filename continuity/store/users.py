"""The console's users, their sessions and failed sign-ins (tables of migration 7), as methods of the store.

A mixin that `SqliteStore` inherits, like continuity/store/autoreply.py and campaigns.py. Users and sessions
live in the store, not in the daemon's memory, so a session survives a restart and holds on every node that
reads the same store. Only a hash of each session id is kept (a copy of the database lets nobody in), and
the password hashes are argon2 strings made by continuity/console/auth.py; nothing here reads either.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from continuity.store.times import required_ts as _dt
from continuity.store.times import ts

ROLES = ("oncall", "marketing", "viewer")


@dataclass
class UserRecord:
    name: str
    role: str
    password_hash: str
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # never the hash, should a record reach a log line
        return f"UserRecord(name={self.name!r}, role={self.role!r})"


@dataclass
class SessionRecord:
    id_hash: str
    user_name: str
    csrf: str
    created_at: datetime
    expires_at: datetime

    def __repr__(self) -> str:
        return f"SessionRecord(user_name={self.user_name!r}, expires_at={self.expires_at.isoformat()})"


def _user(row: sqlite3.Row) -> UserRecord:
    return UserRecord(name=row["name"], role=row["role"], password_hash=row["password_hash"],
                      created_at=_dt(row["created_at"]), updated_at=_dt(row["updated_at"]))


def _session(row: sqlite3.Row) -> SessionRecord:
    return SessionRecord(id_hash=row["id_hash"], user_name=row["user_name"], csrf=row["csrf"],
                         created_at=_dt(row["created_at"]), expires_at=_dt(row["expires_at"]))


class UserSql:
    """The console's statements; mixed into `SqliteStore`, which provides `conn`."""

    conn: sqlite3.Connection

    # users -------------------------------------------------------------------------------------------------

    def add_user(self, *, name: str, role: str, password_hash: str, at: datetime) -> None:
        """Add a user; a name that exists already is an integrity error."""
        self.conn.execute("INSERT INTO console_users (name, role, password_hash, created_at, updated_at)"
                          " VALUES (?, ?, ?, ?, ?)", (name, role, password_hash, ts(at), ts(at)))

    def get_user(self, name: str) -> UserRecord | None:
        """The user of this name, or None."""
        row = self.conn.execute("SELECT * FROM console_users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        return [_user(r) for r in self.conn.execute("SELECT * FROM console_users ORDER BY name").fetchall()]

    def remove_user(self, name: str) -> bool:
        """Remove a user and end their sessions; True if there was one."""
        self.conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
        return self.conn.execute("DELETE FROM console_users WHERE name = ?", (name,)).rowcount == 1

    def set_user_password(self, name: str, password_hash: str, at: datetime) -> bool:
        """Replace a user's password hash and end their sessions (a stolen session dies with the old
        password); True if the user exists."""
        self.conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
        return self.conn.execute("UPDATE console_users SET password_hash = ?, updated_at = ? WHERE name = ?",
                                 (password_hash, ts(at), name)).rowcount == 1

    # sessions ----------------------------------------------------------------------------------------------

    def insert_session(self, *, id_hash: str, user_name: str, csrf: str, created_at: datetime,
                       expires_at: datetime) -> None:
        """Record a signed-in session under the hash of its id."""
        self.conn.execute("INSERT INTO console_sessions (id_hash, user_name, csrf, created_at, expires_at)"
                          " VALUES (?, ?, ?, ?, ?)", (id_hash, user_name, csrf, ts(created_at), ts(expires_at)))

    def get_session(self, id_hash: str, now: datetime) -> SessionRecord | None:
        """The session with this id hash that has not expired by `now`, or None."""
        row = self.conn.execute("SELECT * FROM console_sessions WHERE id_hash = ? AND expires_at > ?",
                                (id_hash, ts(now))).fetchone()
        return _session(row) if row else None

    def delete_session(self, id_hash: str) -> None:
        """End one session (sign-out)."""
        self.conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (id_hash,))

    def purge_console(self, now: datetime, failures_before: datetime) -> int:
        """Forget expired sessions and failed sign-ins older than `failures_before`; returns the sessions
        removed."""
        self.conn.execute("DELETE FROM console_failures WHERE at < ?", (ts(failures_before),))
        return self.conn.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (ts(now),)).rowcount

    # failed sign-ins ---------------------------------------------------------------------------------------

    def add_login_failure(self, *, user_name: str, address: str, at: datetime) -> None:
        """Note one failed sign-in as `user_name` (as typed, known or not) from `address`."""
        self.conn.execute("INSERT INTO console_failures (user_name, address, at) VALUES (?, ?, ?)",
                          (user_name, address, ts(at)))

    def login_failures(self, *, user_name: str, address: str, since: datetime) -> int:
        """How many sign-ins as `user_name` from `address` failed since `since`."""
        row = self.conn.execute("SELECT COUNT(*) FROM console_failures WHERE user_name = ? AND address = ?"
                                " AND at >= ?", (user_name, address, ts(since))).fetchone()
        return int(row[0])

    def clear_login_failures(self, *, user_name: str, address: str) -> None:
        """Forget the failures of `user_name` from `address` (after a successful sign-in)."""
        self.conn.execute("DELETE FROM console_failures WHERE user_name = ? AND address = ?",
                          (user_name, address))
