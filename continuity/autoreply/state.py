"""What the responder remembers, in the store's tables of migration 3: a cursor per mailbox, every message it
decided about, and when each sender last got an answer for each situation.

A message goes  queued ─► sending ─► sent            (or ─► failed on a permanent refusal)
                  │          └─ process died ─► uncertain   (never sent again: see `recover`)
                  └─ situation closed before it went out ─► skipped (reason "closed")
and a message that gets no answer is recorded `skipped` with the rule's reason. A row is written before the
answer is handed to SMTP and marked after, so a restart knows exactly what may have gone out.

The statements are the store's (continuity/store/autoreply.py); this module decides which to run, in which
transaction, and what the rows mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from continuity.store.autoreply import AutoreplyMessageRecord
from continuity.store.records import SituationRecord

if TYPE_CHECKING:
    from continuity.store.protocol import Store

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

    def __init__(self, store: Store, mailbox: str) -> None:
        self.store = store
        self.mailbox = mailbox

    # the on-switch: the ledger ------------------------------------------------------------------------------

    def parts(self) -> list[Part]:
        """Open situations with an `autoreply` step to this mailbox that is done and not undone, oldest first."""
        return active_parts(self.store, self.mailbox)

    # cursor ------------------------------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        row = self.store.autoreply_cursor(self.mailbox)
        return Cursor(row.uidvalidity, row.last_uid) if row else Cursor(None, 0)

    def set_cursor(self, address: str, uidvalidity: int, last_uid: int, now: datetime) -> None:
        with self.store.transaction():
            self.store.ensure_autoreply_cursor(self.mailbox, address)
            self.store.set_autoreply_cursor(self.mailbox, uidvalidity, last_uid, now)

    def note_ok(self, address: str, now: datetime) -> None:
        with self.store.transaction():
            self.store.ensure_autoreply_cursor(self.mailbox, address)
            self.store.set_autoreply_ok(self.mailbox, now)

    def note_error(self, address: str, error: str, now: datetime) -> None:
        with self.store.transaction():
            self.store.ensure_autoreply_cursor(self.mailbox, address)
            self.store.set_autoreply_error(self.mailbox, error[:500], now)

    # messages ----------------------------------------------------------------------------------------------

    def state_of(self, key: str) -> tuple[str, str | None] | None:
        """(state, owner) of a message already decided about, or None."""
        return self.store.autoreply_state(self.mailbox, key)

    def record_skip(self, *, key: str, uidvalidity: int | None, uid: int | None, received_at: datetime | None,
                    reason: str, language: str | None, situations: list[int], now: datetime) -> None:
        self.store.insert_autoreply_skip(self.mailbox, key=key, uidvalidity=uidvalidity, uid=uid,
                                         received_at=received_at, reason=reason, language=language,
                                         situations=situations, decided_at=now)

    def last_answers(self, sender: str, situations: list[int]) -> dict[int, datetime]:
        """When `sender` last got an answer for each of these situations."""
        if not situations:
            return {}
        return self.store.autoreply_last_answers(self.mailbox, sender, situations)

    def record_queued(self, pending: Pending, *, uidvalidity: int | None, received_at: datetime | None,
                      now: datetime) -> None:
        """Decide to answer, and count the answer against the sender's period for every situation it covers
        (in the same transaction, so two messages of one sender in one batch get one answer)."""
        self.store.insert_autoreply_answer(
            self.mailbox, key=pending.key, uidvalidity=uidvalidity, uid=pending.uid, received_at=received_at,
            language=pending.language, situations=pending.situations, recipient=pending.recipient,
            subject=pending.subject, in_reply_to=pending.in_reply_to, references=pending.references,
            decided_at=now)
        self.store.set_autoreply_answered(self.mailbox, pending.recipient, pending.situations, now)

    def queued(self) -> list[Pending]:
        return [_pending(r) for r in self.store.autoreply_messages(self.mailbox, "queued")]

    def pending(self, key: str) -> Pending | None:
        row = self.store.autoreply_message(self.mailbox, key)
        return _pending(row) if row else None

    def mark_sending(self, key: str, owner: str, answer_id: str) -> bool:
        """Claim a queued answer right before it is handed to SMTP; False if it is not queued any more."""
        with self.store.transaction():
            return self.store.claim_autoreply(self.mailbox, key, owner, answer_id)

    def mark_ending(self, key: str) -> None:
        """The answer's final dot is about to go to the server: from here on a lost reply means `uncertain`."""
        with self.store.transaction():
            self.store.set_autoreply_ending(self.mailbox, key)

    def claim_to_end(self, key: str, owner: str, answer_id: str) -> bool:
        """Claim a queued answer and mark it at its final dot, in one transaction: the responder's SMTP
        transaction has gone as far as the body (nothing delivered yet) and the dot follows once this commits.
        False if it is not queued any more (another process has it): the caller then drops the connection
        without the dot, so nothing is delivered. One durable commit per answer instead of two."""
        with self.store.transaction():
            if not self.store.claim_autoreply(self.mailbox, key, owner, answer_id):
                return False
            self.store.set_autoreply_ending(self.mailbox, key)
            return True

    def requeue_unclaimed(self, key: str, owner: str, answer_id: str, error: str) -> None:
        """A temporary failure before the answer was claimed: count the attempt and keep the error, as a claim
        followed by `requeue` would (nothing if another process holds it meanwhile)."""
        with self.store.transaction():
            if self.mark_sending(key, owner, answer_id):
                self.requeue(key, error)

    def fail_unclaimed(self, key: str, owner: str, answer_id: str, error: str) -> None:
        """A permanent refusal before the answer was claimed (nothing if another process holds it)."""
        with self.store.transaction():
            if self.mark_sending(key, owner, answer_id):
                self.mark_failed(key, error)

    def mark_sent(self, key: str, now: datetime) -> None:
        with self.store.transaction():
            self.store.set_autoreply_sent(self.mailbox, key, now)

    def requeue(self, key: str, error: str) -> None:
        """A temporary failure: the answer certainly did not go out (the server said so); try again later."""
        with self.store.transaction():
            self.store.requeue_autoreply(self.mailbox, key, error[:500])

    def mark_uncertain(self, key: str, error: str) -> None:
        """The connection broke during the transfer: it may have gone out, so it is not sent again."""
        with self.store.transaction():
            self.store.set_autoreply_uncertain(self.mailbox, key, error[:500])

    def mark_failed(self, key: str, error: str) -> None:
        """A permanent refusal: recorded, not retried, and the sender's period is not used up by it."""
        with self.store.transaction():
            row = self.pending(key)
            self.store.set_autoreply_failed(self.mailbox, key, error[:500])
            if row is not None:
                self._release(row)

    def mark_closed(self, key: str) -> None:
        """Every situation the answer was for closed before it went out: it is not sent."""
        with self.store.transaction():
            row = self.pending(key)
            self.store.set_autoreply_closed(self.mailbox, key)
            if row is not None:
                self._release(row)

    def _release(self, row: Pending) -> None:
        self.store.release_autoreply_answered(self.mailbox, row.recipient, row.situations)

    def recover(self, alive: Any) -> list[str]:
        """Answers left `sending` by a process that died: those that reached the final dot of DATA become
        `uncertain` and are NOT sent again; the others never reached the server and go back to `queued`.

        A process that died between the final dot and recording the server's 250 may have sent the answer. A
        second identical answer is worse for a customer than a missing automatic one (staff still answer every
        mail), so the row stays visible in `autoreply status` instead. `alive(owner)` says whether the owning
        process still runs. Returns the keys made uncertain.
        """
        rows = self.store.autoreply_messages(self.mailbox, "sending")
        stale = [r for r in rows if not alive(r.owner)]
        if stale:
            with self.store.transaction():
                for row in stale:
                    if row.ending:
                        self.store.set_autoreply_uncertain(
                            self.mailbox, row.key,
                            "interrupted at the end of sending: it may or may not have gone out; not sent again")
                    else:
                        # (also clears `ending`, which was 0 when read: a queued row's `ending` is never read,
                        # claiming it clears it again)
                        self.store.requeue_autoreply(self.mailbox, row.key,
                                                     "interrupted before the server had the answer; sending it again")
        return [r.key for r in stale if r.ending]


def active_parts(store: Store, mailbox: str) -> list[Part]:
    """The ledger says whether a responder is on: an `autoreply` step for this sink, done and not undone, of an
    open situation. One part per (situation, template), oldest situation first."""
    out: list[Part] = []
    for situation_id, template in store.autoreply_switches(mailbox):
        sit = store.get_situation(situation_id)
        if sit is not None and sit.is_open:
            # The planned moment of the first switch-on (not when it ran: a step run a little late must not
            # leave the mail of those seconds unanswered).
            out.append(Part(sit, template, store.autoreply_switched_on(sit.id, mailbox)))
    return out


def mailbox_summary(store: Store, mailbox: str) -> dict[str, Any]:
    """Counts and the cursor's last error, for `continuity autoreply status`."""
    cursor = store.autoreply_cursor(mailbox)
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for state, reason, n in store.autoreply_counts(mailbox):
        counts[state] = counts.get(state, 0) + n
        if state == "skipped":
            reasons[reason] = reasons.get(reason, 0) + n
    return {
        "counts": counts,
        "skipped_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "last_uid": cursor.last_uid if cursor else 0,
        "uidvalidity": cursor.uidvalidity if cursor else None,
        "last_ok_at": cursor.last_ok_at if cursor else None,
        "last_error": cursor.last_error if cursor else None,
        "last_error_at": cursor.last_error_at if cursor else None,
        "last_send_error": store.autoreply_last_failure(mailbox),
    }


def known_mailboxes(store: Store) -> list[str]:
    return store.autoreply_mailboxes()


def _pending(row: AutoreplyMessageRecord) -> Pending:
    return Pending(key=row.key, uid=row.uid, recipient=row.recipient or "", subject=row.subject or "",
                   in_reply_to=row.in_reply_to, references=row.references, language=row.language or "",
                   situations=row.situations, attempts=row.attempts)
