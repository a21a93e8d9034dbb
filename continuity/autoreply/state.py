"""What the responder remembers, in the store's tables of migration 3: a cursor per mailbox, every message it
decided about, and when each sender last got an answer for each situation.

A message goes  queued ─► sending ─► sent            (or ─► failed on a permanent refusal)
                  │          └─ process died ─► uncertain   (never sent again: see `recover`)
                  └─ situation closed before it went out ─► skipped (reason "closed")
and a message that gets no answer is recorded `skipped` with the rule's reason. A row is written before the
answer is handed to SMTP and marked after, so a restart knows exactly what may have gone out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from continuity.store.records import SituationRecord
from continuity.store.sqlite import SqliteStore, from_ts, ts

FINAL = ("sent", "skipped", "failed", "uncertain")


@dataclass(frozen=True)
class Part:
    """One open situation the mailbox answers for, and the template of its `autoreply` step.

    `since` is when the step was due to switch the answers on: a campaign's surge opens at the briefing but
    answers customers only from its launch, so mail from the days in between is not answered at launch."""

    situation: SituationRecord
    template: str
    since: datetime | None = None

    @property
    def answers_from(self) -> datetime:
        """Mail that arrived from this moment on gets this situation's answer."""
        opened = self.situation.opened_at
        return max(opened, self.since) if self.since is not None else opened


@dataclass(frozen=True)
class Pending:
    """A decided answer waiting to go out: everything needed to compose it without the original message."""

    key: str
    uid: int | None
    recipient: str
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    language: str
    situations: tuple[int, ...]
    attempts: int


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int | None
    last_uid: int


class AutoreplyState:
    """The responder's rows for one mailbox (named after its sink)."""

    def __init__(self, store: SqliteStore, mailbox: str) -> None:
        self.store = store
        self.mailbox = mailbox

    # the on-switch: the ledger ------------------------------------------------------------------------------

    def parts(self) -> list[Part]:
        """Open situations with an `autoreply` step to this mailbox that is done and not undone, oldest first."""
        return active_parts(self.store, self.mailbox)

    # cursor ------------------------------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        row = self.store.conn.execute("SELECT uidvalidity, last_uid FROM autoreply_cursor WHERE mailbox = ?",
                                      (self.mailbox,)).fetchone()
        return Cursor(row["uidvalidity"], row["last_uid"]) if row else Cursor(None, 0)

    def _ensure(self, address: str) -> None:
        self.store.conn.execute("INSERT OR IGNORE INTO autoreply_cursor (mailbox, address) VALUES (?, ?)",
                                (self.mailbox, address))

    def set_cursor(self, address: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
        with self.store.transaction():
            self._ensure(address)
            self.store.conn.execute(
                "UPDATE autoreply_cursor SET uidvalidity = ?, last_uid = ?, updated_at = ? WHERE mailbox = ?",
                (uidvalidity, last_uid, ts(now), self.mailbox))

    def note_ok(self, address: str, now: datetime) -> None:
        with self.store.transaction():
            self._ensure(address)
            self.store.conn.execute("UPDATE autoreply_cursor SET last_ok_at = ? WHERE mailbox = ?",
                                    (ts(now), self.mailbox))

    def note_error(self, address: str, error: str, now: datetime) -> None:
        with self.store.transaction():
            self._ensure(address)
            self.store.conn.execute(
                "UPDATE autoreply_cursor SET last_error = ?, last_error_at = ? WHERE mailbox = ?",
                (error[:500], ts(now), self.mailbox))

    # messages ----------------------------------------------------------------------------------------------

    def state_of(self, key: str) -> tuple[str, str | None] | None:
        """(state, owner) of a message already decided about, or None."""
        row = self.store.conn.execute("SELECT state, owner FROM autoreply_messages WHERE mailbox = ? AND key = ?",
                                      (self.mailbox, key)).fetchone()
        return (row["state"], row["owner"]) if row else None

    def record_skip(self, *, key: str, uidvalidity: int | None, uid: int | None, received_at: datetime | None,
                    reason: str, language: str | None, situations: list[int], now: datetime) -> None:
        self.store.conn.execute(
            "INSERT OR IGNORE INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at,"
            " decision, reason, language, situations, state) VALUES (?, ?, ?, ?, ?, ?, 'skip', ?, ?, ?, 'skipped')",
            (self.mailbox, key, uidvalidity, uid, ts(received_at), ts(now), reason, language,
             json.dumps(situations)))

    def last_answers(self, sender: str, situations: list[int]) -> dict[int, datetime]:
        """When `sender` last got an answer for each of these situations."""
        if not situations:
            return {}
        rows = self.store.conn.execute(
            f"SELECT situation_id, answered_at FROM autoreply_senders WHERE mailbox = ? AND sender = ?"
            f" AND situation_id IN ({','.join('?' * len(situations))})",
            (self.mailbox, sender, *situations)).fetchall()
        return {r["situation_id"]: _dt(r["answered_at"]) for r in rows}

    def record_queued(self, pending: Pending, *, uidvalidity: int | None, received_at: datetime | None,
                      now: datetime) -> None:
        """Decide to answer, and count the answer against the sender's period for every situation it covers
        (in the same transaction, so two messages of one sender in one batch get one answer)."""
        self.store.conn.execute(
            "INSERT OR IGNORE INTO autoreply_messages (mailbox, key, uidvalidity, uid, received_at, decided_at,"
            " decision, reason, language, situations, state, recipient, subject, in_reply_to, refs)"
            " VALUES (?, ?, ?, ?, ?, ?, 'answer', 'ok', ?, ?, 'queued', ?, ?, ?, ?)",
            (self.mailbox, pending.key, uidvalidity, pending.uid, ts(received_at), ts(now), pending.language,
             json.dumps(list(pending.situations)), pending.recipient, pending.subject, pending.in_reply_to,
             json.dumps(list(pending.references))))
        for sid in pending.situations:
            self.store.conn.execute(
                "INSERT INTO autoreply_senders (mailbox, sender, situation_id, answered_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (mailbox, sender, situation_id) DO UPDATE SET answered_at = excluded.answered_at",
                (self.mailbox, pending.recipient, sid, ts(now)))

    def queued(self) -> list[Pending]:
        rows = self.store.conn.execute(
            "SELECT * FROM autoreply_messages WHERE mailbox = ? AND state = 'queued' ORDER BY uid, decided_at",
            (self.mailbox,)).fetchall()
        return [_pending(r) for r in rows]

    def pending(self, key: str) -> Pending | None:
        row = self.store.conn.execute("SELECT * FROM autoreply_messages WHERE mailbox = ? AND key = ?",
                                      (self.mailbox, key)).fetchone()
        return _pending(row) if row else None

    def mark_sending(self, key: str, owner: str, answer_id: str) -> bool:
        """Claim a queued answer right before it is handed to SMTP; False if it is not queued any more."""
        with self.store.transaction():
            cur = self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'sending', owner = ?, answer_id = ?, attempts = attempts + 1,"
                " ending = 0 WHERE mailbox = ? AND key = ? AND state = 'queued'", (owner, answer_id, self.mailbox, key))
            return cur.rowcount == 1

    def mark_ending(self, key: str) -> None:
        """The answer's final dot is about to go to the server: from here on a lost reply means `uncertain`."""
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE autoreply_messages SET ending = 1 WHERE mailbox = ? AND key = ? AND state = 'sending'",
                (self.mailbox, key))

    def mark_sent(self, key: str, now: datetime) -> None:
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'sent', sent_at = ?, owner = NULL, last_error = NULL"
                " WHERE mailbox = ? AND key = ? AND state = 'sending'", (ts(now), self.mailbox, key))

    def requeue(self, key: str, error: str) -> None:
        """A temporary failure: the answer certainly did not go out (the server said so); try again later."""
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'queued', owner = NULL, last_error = ?, ending = 0"
                " WHERE mailbox = ? AND key = ? AND state = 'sending'", (error[:500], self.mailbox, key))

    def mark_uncertain(self, key: str, error: str) -> None:
        """The connection broke during the transfer: it may have gone out, so it is not sent again."""
        with self.store.transaction():
            self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'uncertain', owner = NULL, last_error = ?"
                " WHERE mailbox = ? AND key = ? AND state = 'sending'", (error[:500], self.mailbox, key))

    def mark_failed(self, key: str, error: str) -> None:
        """A permanent refusal: recorded, not retried, and the sender's period is not used up by it."""
        with self.store.transaction():
            row = self.pending(key)
            self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'failed', owner = NULL, last_error = ?"
                " WHERE mailbox = ? AND key = ? AND state IN ('sending', 'queued')", (error[:500], self.mailbox, key))
            if row is not None:
                self._release(row)

    def mark_closed(self, key: str) -> None:
        """Every situation the answer was for closed before it went out: it is not sent."""
        with self.store.transaction():
            row = self.pending(key)
            self.store.conn.execute(
                "UPDATE autoreply_messages SET state = 'skipped', reason = 'closed', owner = NULL"
                " WHERE mailbox = ? AND key = ? AND state = 'queued'", (self.mailbox, key))
            if row is not None:
                self._release(row)

    def _release(self, row: Pending) -> None:
        self.store.conn.execute(
            f"DELETE FROM autoreply_senders WHERE mailbox = ? AND sender = ?"
            f" AND situation_id IN ({','.join('?' * len(row.situations)) or 'NULL'})",
            (self.mailbox, row.recipient, *row.situations))

    def recover(self, alive: Any) -> list[str]:
        """Answers left `sending` by a process that died: those that reached the final dot of DATA become
        `uncertain` and are NOT sent again; the others never reached the server and go back to `queued`.

        A process that died between the final dot and recording the server's 250 may have sent the answer. A
        second identical answer is worse for a customer than a missing automatic one (staff still answer every
        mail), so the row stays visible in `autoreply status` instead. `alive(owner)` says whether the owning
        process still runs. Returns the keys made uncertain.
        """
        rows = self.store.conn.execute(
            "SELECT key, owner, ending FROM autoreply_messages WHERE mailbox = ? AND state = 'sending'",
            (self.mailbox,)).fetchall()
        stale = [r for r in rows if not alive(r["owner"])]
        if stale:
            with self.store.transaction():
                for row in stale:
                    if row["ending"]:
                        self.store.conn.execute(
                            "UPDATE autoreply_messages SET state = 'uncertain', owner = NULL, last_error = ?"
                            " WHERE mailbox = ? AND key = ? AND state = 'sending'",
                            ("interrupted at the end of sending: it may or may not have gone out; not sent again",
                             self.mailbox, row["key"]))
                    else:
                        self.store.conn.execute(
                            "UPDATE autoreply_messages SET state = 'queued', owner = NULL, last_error = ?"
                            " WHERE mailbox = ? AND key = ? AND state = 'sending'",
                            ("interrupted before the server had the answer; sending it again",
                             self.mailbox, row["key"]))
        return [r["key"] for r in stale if r["ending"]]


def active_parts(store: SqliteStore, mailbox: str) -> list[Part]:
    """The ledger says whether a responder is on: an `autoreply` step for this sink, done and not undone, of an
    open situation. One part per (situation, template), oldest situation first."""
    rows = store.conn.execute(
        "SELECT DISTINCT st.situation_id, st.template FROM steps st JOIN situations s ON s.id = st.situation_id"
        " WHERE st.action = 'autoreply' AND st.sink = ? AND st.state = 'done' AND st.phase IN ('open', 'update')"
        " AND s.state = 'open' ORDER BY s.opened_at, st.situation_id, st.template", (mailbox,)).fetchall()
    out: list[Part] = []
    for r in rows:
        sit = store.get_situation(r["situation_id"])
        if sit is not None and sit.is_open:
            # The planned moment of the first switch-on (not when it ran: a step run a little late must not
            # leave the mail of those seconds unanswered).
            due = store.conn.execute(
                "SELECT MIN(due_at) AS due FROM steps WHERE situation_id = ? AND sink = ? AND action = 'autoreply'"
                " AND phase = 'open' AND state = 'done'", (sit.id, mailbox)).fetchone()
            out.append(Part(sit, r["template"], from_ts(due["due"]) if due is not None else None))
    return out


def mailbox_summary(store: SqliteStore, mailbox: str) -> dict[str, Any]:
    """Counts and the cursor's last error, for `continuity autoreply status`."""
    cursor = store.conn.execute("SELECT * FROM autoreply_cursor WHERE mailbox = ?", (mailbox,)).fetchone()
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for r in store.conn.execute("SELECT state, reason, COUNT(*) AS n FROM autoreply_messages WHERE mailbox = ?"
                                " GROUP BY state, reason", (mailbox,)).fetchall():
        counts[r["state"]] = counts.get(r["state"], 0) + r["n"]
        if r["state"] == "skipped":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["n"]
    failed = store.conn.execute(
        "SELECT last_error FROM autoreply_messages WHERE mailbox = ? AND state = 'failed' AND last_error IS NOT NULL"
        " ORDER BY decided_at DESC LIMIT 1", (mailbox,)).fetchone()
    return {
        "counts": counts,
        "skipped_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "last_uid": cursor["last_uid"] if cursor else 0,
        "uidvalidity": cursor["uidvalidity"] if cursor else None,
        "last_ok_at": from_ts(cursor["last_ok_at"]) if cursor else None,
        "last_error": cursor["last_error"] if cursor else None,
        "last_error_at": from_ts(cursor["last_error_at"]) if cursor else None,
        "last_send_error": failed["last_error"] if failed else None,
    }


def known_mailboxes(store: SqliteStore) -> list[str]:
    rows = store.conn.execute("SELECT mailbox FROM autoreply_cursor UNION SELECT DISTINCT mailbox FROM "
                              "autoreply_messages ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def _dt(text: str) -> datetime:
    value = from_ts(text)
    assert value is not None
    return value


def _pending(row: Any) -> Pending:
    return Pending(key=row["key"], uid=row["uid"], recipient=row["recipient"] or "", subject=row["subject"] or "",
                   in_reply_to=row["in_reply_to"], references=tuple(json.loads(row["refs"] or "[]")),
                   language=row["language"] or "", situations=tuple(json.loads(row["situations"] or "[]")),
                   attempts=row["attempts"])
