"""The auto-responder's rows on PostgreSQL: continuity/store/autoreply.py's statements, in PostgreSQL's SQL.

A mixin of PostgresStore for the reason autoreply.py gives (one flat store object, the store's own connection
and transaction depth). What the rows mean is continuity/autoreply/state.py's; each method here does what its
namesake in autoreply.py does, and tests/store/test_autoreply_state.py holds both to it. Text is sorted with
COLLATE "C" so the order is SQLite's (by bytes), whatever the database's collation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from continuity.store.autoreply import AutoreplyCursorRecord, AutoreplyMessageRecord
from continuity.store.pg_values import as_utc, req_utc, utc


def _message(row: dict[str, Any]) -> AutoreplyMessageRecord:
    return AutoreplyMessageRecord(
        mailbox=row["mailbox"], key=row["key"], uidvalidity=row["uidvalidity"], uid=row["uid"],
        received_at=as_utc(row["received_at"]), decided_at=req_utc(row["decided_at"]), decision=row["decision"],
        reason=row["reason"], language=row["language"], situations=tuple(json.loads(row["situations"] or "[]")),
        state=row["state"], recipient=row["recipient"], subject=row["subject"], in_reply_to=row["in_reply_to"],
        references=tuple(json.loads(row["refs"] or "[]")), answer_id=row["answer_id"], attempts=row["attempts"],
        owner=row["owner"], last_error=row["last_error"], sent_at=as_utc(row["sent_at"]),
        ending=bool(row["ending"]),
    )


class AutoreplyPg:
    """The auto-responder's statements; mixed into `PostgresStore`, which provides `conn`."""

    conn: Any

    def _changed(self, sql: str, args: Sequence[Any]) -> bool:
        return bool(self.conn.execute(sql, args).rowcount == 1)

    # the on-switch: read from the ledger -----------------------------------------------------------------

    def autoreply_switches(self, mailbox: str) -> list[tuple[int, str]]:
        rows = self.conn.execute(
            "SELECT st.situation_id, st.template FROM steps st JOIN situations s ON s.id = st.situation_id"
            " WHERE st.action = 'autoreply' AND st.sink = %s AND st.state = 'done' AND st.phase IN ('open', 'update')"
            " AND s.state = 'open' GROUP BY s.opened_at, st.situation_id, st.template"
            " ORDER BY s.opened_at, st.situation_id, st.template COLLATE \"C\"",
            (mailbox,)).fetchall()
        return [(r["situation_id"], r["template"]) for r in rows]

    def autoreply_switched_on(self, situation_id: int, mailbox: str) -> datetime | None:
        row = self.conn.execute(
            "SELECT MIN(due_at) AS due FROM steps WHERE situation_id = %s AND sink = %s AND action = 'autoreply'"
            " AND phase = 'open' AND state = 'done'", (situation_id, mailbox)).fetchone()
        return as_utc(row["due"]) if row is not None else None

    # cursor ------------------------------------------------------------------------------------------------

    def autoreply_cursor(self, mailbox: str) -> AutoreplyCursorRecord | None:
        row = self.conn.execute("SELECT * FROM autoreply_cursor WHERE mailbox = %s", (mailbox,)).fetchone()
        if row is None:
            return None
        return AutoreplyCursorRecord(
            mailbox=row["mailbox"], address=row["address"], uidvalidity=row["uidvalidity"], last_uid=row["last_uid"],
            updated_at=as_utc(row["updated_at"]), last_ok_at=as_utc(row["last_ok_at"]),
            last_error=row["last_error"], last_error_at=as_utc(row["last_error_at"]))

    def ensure_autoreply_cursor(self, mailbox: str, address: str) -> None:
        self.conn.execute("INSERT INTO autoreply_cursor (mailbox, address) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (mailbox, address))

    def set_autoreply_cursor(self, mailbox: str, uidvalidity: int, last_uid: int, at: datetime) -> None:
        self.conn.execute(
            "UPDATE autoreply_cursor SET uidvalidity = %s, last_uid = %s, updated_at = %s WHERE mailbox = %s",
            (uidvalidity, last_uid, utc(at), mailbox))

    def set_autoreply_ok(self, mailbox: str, at: datetime) -> None:
        self.conn.execute("UPDATE autoreply_cursor SET last_ok_at = %s WHERE mailbox = %s", (utc(at), mailbox))

    def set_autoreply_error(self, mailbox: str, error: str, at: datetime) -> None:
        self.conn.execute("UPDATE autoreply_cursor SET last_error = %s, last_error_at = %s WHERE mailbox = %s",
                          (error, utc(at), mailbox))

    def autoreply_mailboxes(self) -> list[str]:
        rows = self.conn.execute("SELECT mailbox FROM (SELECT mailbox FROM autoreply_cursor UNION SELECT mailbox"
                                 " FROM autoreply_messages) AS m ORDER BY mailbox COLLATE \"C\"").fetchall()
        return [r["mailbox"] for r in rows]

    # messages ----------------------------------------------------------------------------------------------

    def autoreply_message(self, mailbox: str, key: str) -> AutoreplyMessageRecord | None:
        row = self.conn.execute("SELECT * FROM autoreply_messages WHERE mailbox = %s AND key = %s",
                                (mailbox, key)).fetchone()
        return _message(row) if row else None

    def autoreply_state(self, mailbox: str, key: str) -> tuple[str, str | None] | None:
        row = self.conn.execute("SELECT state, owner FROM autoreply_messages WHERE mailbox = %s AND key = %s",
                                (mailbox, key)).fetchone()
        return (row["state"], row["owner"]) if row else None

    def autoreply_messages(self, mailbox: str, state: str) -> list[AutoreplyMessageRecord]:
        # NULLS FIRST: SQLite sorts a missing UID before every number
        rows = self.conn.execute(
            "SELECT * FROM autoreply_messages WHERE mailbox = %s AND state = %s ORDER BY uid NULLS FIRST, decided_at",
            (mailbox, state)).fetchall()
        return [_message(r) for r in rows]

    def insert_autoreply_skip(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                              received_at: datetime | None, reason: str, language: str | None,
                              situations: Sequence[int], decided_at: datetime) -> bool:
        return self._changed(
            "INSERT INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at, decision,"
            " reason, language, situations, state) VALUES (%s, %s, %s, %s, %s, %s, 'skip', %s, %s, %s, 'skipped')"
            " ON CONFLICT DO NOTHING",
            (mailbox, key, uidvalidity, uid, utc(received_at), utc(decided_at), reason, language,
             json.dumps(list(situations))))

    def insert_autoreply_answer(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                                received_at: datetime | None, language: str, situations: Sequence[int],
                                recipient: str, subject: str, in_reply_to: str | None, references: Sequence[str],
                                decided_at: datetime) -> bool:
        return self._changed(
            "INSERT INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at, decision,"
            " reason, language, situations, state, recipient, subject, in_reply_to, refs)"
            " VALUES (%s, %s, %s, %s, %s, %s, 'answer', 'ok', %s, %s, 'queued', %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (mailbox, key, uidvalidity, uid, utc(received_at), utc(decided_at), language,
             json.dumps(list(situations)), recipient, subject, in_reply_to, json.dumps(list(references))))

    # transitions (each moves a row only from the state(s) it names) ------------------------------------------

    def claim_autoreply(self, mailbox: str, key: str, owner: str, answer_id: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'sending', owner = %s, answer_id = %s, attempts = attempts + 1,"
            " ending = false WHERE mailbox = %s AND key = %s AND state = 'queued'", (owner, answer_id, mailbox, key))

    def set_autoreply_ending(self, mailbox: str, key: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET ending = true WHERE mailbox = %s AND key = %s AND state = 'sending'",
            (mailbox, key))

    def set_autoreply_sent(self, mailbox: str, key: str, at: datetime) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'sent', sent_at = %s, owner = NULL, last_error = NULL"
            " WHERE mailbox = %s AND key = %s AND state = 'sending'", (utc(at), mailbox, key))

    def requeue_autoreply(self, mailbox: str, key: str, error: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'queued', owner = NULL, last_error = %s, ending = false"
            " WHERE mailbox = %s AND key = %s AND state = 'sending'", (error, mailbox, key))

    def set_autoreply_uncertain(self, mailbox: str, key: str, error: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'uncertain', owner = NULL, last_error = %s"
            " WHERE mailbox = %s AND key = %s AND state = 'sending'", (error, mailbox, key))

    def set_autoreply_failed(self, mailbox: str, key: str, error: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'failed', owner = NULL, last_error = %s"
            " WHERE mailbox = %s AND key = %s AND state IN ('sending', 'queued')", (error, mailbox, key))

    def set_autoreply_closed(self, mailbox: str, key: str) -> bool:
        return self._changed(
            "UPDATE autoreply_messages SET state = 'skipped', reason = 'closed', owner = NULL"
            " WHERE mailbox = %s AND key = %s AND state = 'queued'", (mailbox, key))

    # senders (one answer per sender per situation per period) -----------------------------------------------

    def autoreply_last_answers(self, mailbox: str, sender: str, situations: Sequence[int]) -> dict[int, datetime]:
        rows = self.conn.execute(
            "SELECT situation_id, answered_at FROM autoreply_senders WHERE mailbox = %s AND sender = %s"
            " AND situation_id = ANY(%s::bigint[])", (mailbox, sender, list(situations))).fetchall()
        return {r["situation_id"]: req_utc(r["answered_at"]) for r in rows}

    def set_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int], at: datetime) -> None:
        for sid in situations:
            self.conn.execute(
                "INSERT INTO autoreply_senders (mailbox, sender, situation_id, answered_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (mailbox, sender, situation_id) DO UPDATE SET answered_at = excluded.answered_at",
                (mailbox, sender, sid, utc(at)))

    def release_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int]) -> None:
        self.conn.execute(
            "DELETE FROM autoreply_senders WHERE mailbox = %s AND sender = %s AND situation_id = ANY(%s::bigint[])",
            (mailbox, sender, list(situations)))

    # status ------------------------------------------------------------------------------------------------

    def autoreply_counts(self, mailbox: str) -> list[tuple[str, str, int]]:
        rows = self.conn.execute("SELECT state, reason, COUNT(*) AS n FROM autoreply_messages WHERE mailbox = %s"
                                 " GROUP BY state, reason", (mailbox,)).fetchall()
        return [(r["state"], r["reason"], int(r["n"])) for r in rows]

    def autoreply_last_failure(self, mailbox: str) -> str | None:
        row = self.conn.execute(
            "SELECT last_error FROM autoreply_messages WHERE mailbox = %s AND state = 'failed'"
            " AND last_error IS NOT NULL ORDER BY decided_at DESC LIMIT 1", (mailbox,)).fetchone()
        return row["last_error"] if row else None

    def autoreply_decided_between(self, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
        rows = self.conn.execute("SELECT state, reason, COUNT(*) AS n FROM autoreply_messages WHERE decided_at >= %s"
                                 " AND decided_at < %s GROUP BY state, reason", (utc(since), utc(until))).fetchall()
        return [(r["state"], r["reason"], int(r["n"])) for r in rows]
