"""The auto-responder's rows (tables of migrations 3 and 6), as methods of the store.

Only the SQL lives here; what the rows mean (the state machine queued ─► sending ─► sent / failed /
uncertain / skipped, the per-sender period, crash recovery) is continuity/autoreply/state.py, which calls
these methods and opens the transactions around them.

Why a mixin that `SqliteStore` inherits, not a class that wraps the store: the rest of the project sees one
store object with one flat set of methods (`continuity.store.protocol.Store`), exactly like the situations,
steps and maintenance methods already on it. These statements must run on the store's own connection and
inside its `transaction()` (whose nesting depth lives on the store), so a wrapper would only forward
`self.store.conn` and `self.store.transaction` back to the object it wraps, and the Protocol would grow a
second level (`store.autoreply.claim(...)`) that a PostgreSQL implementation had to mirror object by
object. A mixin keeps the statements in their own file without any of that.

Every write joins the transaction it is called in (outside one, SQLite autocommits each statement): the
transaction boundaries are the caller's, as they were before the SQL moved here. Transitions only move a row
from the state(s) they name, and return whether they did.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from continuity.store.times import from_ts, ts


@dataclass(frozen=True)
class AutoreplyCursorRecord:
    """One mailbox's row of `autoreply_cursor`: how far the responder read it, and its last IMAP news."""

    mailbox: str
    address: str
    uidvalidity: int | None
    last_uid: int
    updated_at: datetime | None
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True)
class AutoreplyMessageRecord:
    """One message of `autoreply_messages`: the decision about it and, for an answer, all that is needed to
    send it (JSON columns decoded)."""

    mailbox: str
    key: str
    uidvalidity: int | None
    uid: int | None
    received_at: datetime | None
    decided_at: datetime
    decision: str
    reason: str
    language: str | None
    situations: tuple[int, ...]
    state: str
    recipient: str | None
    subject: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    answer_id: str | None
    attempts: int
    owner: str | None
    last_error: str | None
    sent_at: datetime | None
    ending: bool


def _in(values: Sequence[object]) -> str:
    """The placeholders of an IN list; an empty list matches nothing."""
    return ",".join("?" * len(values)) or "NULL"


def _message(row: sqlite3.Row) -> AutoreplyMessageRecord:
    decided = from_ts(row["decided_at"])
    assert decided is not None
    return AutoreplyMessageRecord(
        mailbox=row["mailbox"], key=row["key"], uidvalidity=row["uidvalidity"], uid=row["uid"],
        received_at=from_ts(row["received_at"]), decided_at=decided, decision=row["decision"],
        reason=row["reason"], language=row["language"], situations=tuple(json.loads(row["situations"] or "[]")),
        state=row["state"], recipient=row["recipient"], subject=row["subject"], in_reply_to=row["in_reply_to"],
        references=tuple(json.loads(row["refs"] or "[]")), answer_id=row["answer_id"], attempts=row["attempts"],
        owner=row["owner"], last_error=row["last_error"], sent_at=from_ts(row["sent_at"]),
        ending=bool(row["ending"]),
    )


class AutoreplySql:
    """The auto-responder's statements; mixed into `SqliteStore`, which provides `conn`."""

    conn: sqlite3.Connection

    # the on-switch: read from the ledger -----------------------------------------------------------------

    def autoreply_switches(self, mailbox: str) -> list[tuple[int, str]]:
        """(situation id, template) of every `autoreply` step to `mailbox` that is done, of the open or update
        phase, of an open situation; distinct, oldest situation first."""
        rows = self.conn.execute(
            "SELECT DISTINCT st.situation_id, st.template FROM steps st JOIN situations s ON s.id = st.situation_id"
            " WHERE st.action = 'autoreply' AND st.sink = ? AND st.state = 'done' AND st.phase IN ('open', 'update')"
            " AND s.state = 'open' ORDER BY s.opened_at, st.situation_id, st.template", (mailbox,)).fetchall()
        return [(r["situation_id"], r["template"]) for r in rows]

    def autoreply_switched_on(self, situation_id: int, mailbox: str) -> datetime | None:
        """When the situation's first done `autoreply` step of the open phase to `mailbox` was due (planned,
        not run), or None if it has none."""
        row = self.conn.execute(
            "SELECT MIN(due_at) AS due FROM steps WHERE situation_id = ? AND sink = ? AND action = 'autoreply'"
            " AND phase = 'open' AND state = 'done'", (situation_id, mailbox)).fetchone()
        return from_ts(row["due"]) if row is not None else None

    # cursor ------------------------------------------------------------------------------------------------

    def autoreply_cursor(self, mailbox: str) -> AutoreplyCursorRecord | None:
        """The mailbox's cursor row, or None before the responder first wrote one."""
        row = self.conn.execute("SELECT * FROM autoreply_cursor WHERE mailbox = ?", (mailbox,)).fetchone()
        if row is None:
            return None
        return AutoreplyCursorRecord(
            mailbox=row["mailbox"], address=row["address"], uidvalidity=row["uidvalidity"], last_uid=row["last_uid"],
            updated_at=from_ts(row["updated_at"]), last_ok_at=from_ts(row["last_ok_at"]),
            last_error=row["last_error"], last_error_at=from_ts(row["last_error_at"]))

    def ensure_autoreply_cursor(self, mailbox: str, address: str) -> None:
        """Create the mailbox's cursor row (last UID 0) unless it exists; an existing row is left alone."""
        self.conn.execute("INSERT OR IGNORE INTO autoreply_cursor (mailbox, address) VALUES (?, ?)",
                          (mailbox, address))

    def set_autoreply_cursor(self, mailbox: str, uidvalidity: int, last_uid: int, at: datetime) -> None:
        """Move an existing cursor row to (uidvalidity, last_uid), updated at `at`."""
        self.conn.execute(
            "UPDATE autoreply_cursor SET uidvalidity = ?, last_uid = ?, updated_at = ? WHERE mailbox = ?",
            (uidvalidity, last_uid, ts(at), mailbox))

    def set_autoreply_ok(self, mailbox: str, at: datetime) -> None:
        """Record that the mailbox was reached at `at` (the last error stays, with its own time)."""
        self.conn.execute("UPDATE autoreply_cursor SET last_ok_at = ? WHERE mailbox = ?", (ts(at), mailbox))

    def set_autoreply_error(self, mailbox: str, error: str, at: datetime) -> None:
        """Record the mailbox's latest error and its time, replacing the one before."""
        self.conn.execute("UPDATE autoreply_cursor SET last_error = ?, last_error_at = ? WHERE mailbox = ?",
                          (error, ts(at), mailbox))

    def autoreply_mailboxes(self) -> list[str]:
        """Every mailbox with a cursor or a message row, sorted."""
        rows = self.conn.execute("SELECT mailbox FROM autoreply_cursor UNION SELECT DISTINCT mailbox FROM "
                                 "autoreply_messages ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    # messages ----------------------------------------------------------------------------------------------

    def autoreply_message(self, mailbox: str, key: str) -> AutoreplyMessageRecord | None:
        """The row of message `key`, or None if nothing was decided about it."""
        row = self.conn.execute("SELECT * FROM autoreply_messages WHERE mailbox = ? AND key = ?",
                                (mailbox, key)).fetchone()
        return _message(row) if row else None

    def autoreply_state(self, mailbox: str, key: str) -> tuple[str, str | None] | None:
        """(state, owner) of message `key`, or None if nothing was decided about it."""
        row = self.conn.execute("SELECT state, owner FROM autoreply_messages WHERE mailbox = ? AND key = ?",
                                (mailbox, key)).fetchone()
        return (row["state"], row["owner"]) if row else None

    def autoreply_messages(self, mailbox: str, state: str) -> list[AutoreplyMessageRecord]:
        """The mailbox's messages in `state`, by UID and then decision time."""
        rows = self.conn.execute(
            "SELECT * FROM autoreply_messages WHERE mailbox = ? AND state = ? ORDER BY uid, decided_at",
            (mailbox, state)).fetchall()
        return [_message(r) for r in rows]

    def insert_autoreply_skip(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                              received_at: datetime | None, reason: str, language: str | None,
                              situations: Sequence[int], decided_at: datetime) -> bool:
        """Record a message left unanswered (state `skipped`, decision `skip`); a key decided before is left
        alone. True if the row is new."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at,"
            " decision, reason, language, situations, state) VALUES (?, ?, ?, ?, ?, ?, 'skip', ?, ?, ?, 'skipped')",
            (mailbox, key, uidvalidity, uid, ts(received_at), ts(decided_at), reason, language,
             json.dumps(list(situations))))
        return cur.rowcount == 1

    def insert_autoreply_answer(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                                received_at: datetime | None, language: str, situations: Sequence[int],
                                recipient: str, subject: str, in_reply_to: str | None, references: Sequence[str],
                                decided_at: datetime) -> bool:
        """Record an answer to send (state `queued`, decision `answer`, reason `ok`, 0 attempts); a key
        decided before is left alone. True if the row is new."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at,"
            " decision, reason, language, situations, state, recipient, subject, in_reply_to, refs)"
            " VALUES (?, ?, ?, ?, ?, ?, 'answer', 'ok', ?, ?, 'queued', ?, ?, ?, ?)",
            (mailbox, key, uidvalidity, uid, ts(received_at), ts(decided_at), language,
             json.dumps(list(situations)), recipient, subject, in_reply_to, json.dumps(list(references))))
        return cur.rowcount == 1

    # transitions (each moves a row only from the state(s) it names) ------------------------------------------

    def claim_autoreply(self, mailbox: str, key: str, owner: str, answer_id: str) -> bool:
        """queued ─► sending, owned by `owner`, one more attempt, `ending` cleared. True only for the one
        caller that moved it: a row is claimed by exactly one owner."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'sending', owner = ?, answer_id = ?, attempts = attempts + 1,"
            " ending = 0 WHERE mailbox = ? AND key = ? AND state = 'queued'", (owner, answer_id, mailbox, key))
        return cur.rowcount == 1

    def set_autoreply_ending(self, mailbox: str, key: str) -> bool:
        """Mark a `sending` row as at the final dot of DATA (from here on it may have gone out)."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET ending = 1 WHERE mailbox = ? AND key = ? AND state = 'sending'",
            (mailbox, key))
        return cur.rowcount == 1

    def set_autoreply_sent(self, mailbox: str, key: str, at: datetime) -> bool:
        """sending ─► sent at `at`; the owner and the last error are cleared."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'sent', sent_at = ?, owner = NULL, last_error = NULL"
            " WHERE mailbox = ? AND key = ? AND state = 'sending'", (ts(at), mailbox, key))
        return cur.rowcount == 1

    def requeue_autoreply(self, mailbox: str, key: str, error: str) -> bool:
        """sending ─► queued with `error`; the owner and `ending` are cleared."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'queued', owner = NULL, last_error = ?, ending = 0"
            " WHERE mailbox = ? AND key = ? AND state = 'sending'", (error, mailbox, key))
        return cur.rowcount == 1

    def set_autoreply_uncertain(self, mailbox: str, key: str, error: str) -> bool:
        """sending ─► uncertain with `error`; the owner is cleared (`ending` is kept)."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'uncertain', owner = NULL, last_error = ?"
            " WHERE mailbox = ? AND key = ? AND state = 'sending'", (error, mailbox, key))
        return cur.rowcount == 1

    def set_autoreply_failed(self, mailbox: str, key: str, error: str) -> bool:
        """sending or queued ─► failed with `error`; the owner is cleared."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'failed', owner = NULL, last_error = ?"
            " WHERE mailbox = ? AND key = ? AND state IN ('sending', 'queued')", (error, mailbox, key))
        return cur.rowcount == 1

    def set_autoreply_closed(self, mailbox: str, key: str) -> bool:
        """queued ─► skipped with reason `closed`; the owner is cleared."""
        cur = self.conn.execute(
            "UPDATE autoreply_messages SET state = 'skipped', reason = 'closed', owner = NULL"
            " WHERE mailbox = ? AND key = ? AND state = 'queued'", (mailbox, key))
        return cur.rowcount == 1

    # senders (one answer per sender per situation per period) -----------------------------------------------

    def autoreply_last_answers(self, mailbox: str, sender: str, situations: Sequence[int]) -> dict[int, datetime]:
        """situation id ─► when `sender` last got an answer for it, for those of `situations` it got one for."""
        if not situations:
            return {}
        rows = self.conn.execute(
            f"SELECT situation_id, answered_at FROM autoreply_senders WHERE mailbox = ? AND sender = ?"
            f" AND situation_id IN ({_in(situations)})", (mailbox, sender, *situations)).fetchall()
        out: dict[int, datetime] = {}
        for r in rows:
            when = from_ts(r["answered_at"])
            assert when is not None
            out[r["situation_id"]] = when
        return out

    def set_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int], at: datetime) -> None:
        """Record that `sender` got an answer at `at` for each of `situations` (replacing earlier times)."""
        for sid in situations:
            self.conn.execute(
                "INSERT INTO autoreply_senders (mailbox, sender, situation_id, answered_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox, sender, situation_id) DO UPDATE SET answered_at = excluded.answered_at",
                (mailbox, sender, sid, ts(at)))

    def release_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int]) -> None:
        """Forget that `sender` got an answer for `situations` (its period starts afresh)."""
        self.conn.execute(
            f"DELETE FROM autoreply_senders WHERE mailbox = ? AND sender = ? AND situation_id IN ({_in(situations)})",
            (mailbox, sender, *situations))

    # status ------------------------------------------------------------------------------------------------

    def autoreply_counts(self, mailbox: str) -> list[tuple[str, str, int]]:
        """(state, reason, how many messages) of the mailbox, one per pair that occurs."""
        rows = self.conn.execute("SELECT state, reason, COUNT(*) AS n FROM autoreply_messages WHERE mailbox = ?"
                                 " GROUP BY state, reason", (mailbox,)).fetchall()
        return [(r["state"], r["reason"], r["n"]) for r in rows]

    def autoreply_last_failure(self, mailbox: str) -> str | None:
        """The error of the most recently decided `failed` message that has one."""
        row = self.conn.execute(
            "SELECT last_error FROM autoreply_messages WHERE mailbox = ? AND state = 'failed'"
            " AND last_error IS NOT NULL ORDER BY decided_at DESC LIMIT 1", (mailbox,)).fetchone()
        return row["last_error"] if row else None

    def autoreply_decided_between(self, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
        rows = self.conn.execute("SELECT state, reason, COUNT(*) AS n FROM autoreply_messages WHERE decided_at >= ?"
                                 " AND decided_at < ? GROUP BY state, reason", (ts(since), ts(until))).fetchall()
        return [(r["state"], r["reason"], r["n"]) for r in rows]
