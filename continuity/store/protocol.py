"""`Store`: what the rest of continuity may ask of a store, and what each answer promises.

`SqliteStore` (sqlite.py) and `PostgresStore` (postgres.py) implement it; it was found by reading every call
on a store object outside continuity/store/, and tests/store/ holds every implementation to it. Nothing
outside this package touches a store's connection or SQL.

Rules every method keeps:
- Writes join the transaction they are called in (`transaction()` nests: an inner one joins the outer). A
  write called outside one is atomic on its own but does not wait out a busy store; callers that need a
  write to wait, or several writes to commit together, open `transaction()` around them. No method commits
  a transaction it did not open (`set_send_mark` opens its own only when called outside one).
- A "claim" (`set_step(expect=…)`, `claim_autoreply`, `set_campaign_run(expect=…)`) is a compare-and-set:
  of several processes trying at once on the same row, exactly one gets True.
- Times go in and come out as aware datetimes, kept to the microsecond, compared as instants.
- Records are the dataclasses of continuity/store/records.py, autoreply.py and campaigns.py, detached from
  the database (changing one changes nothing stored).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from continuity.store.autoreply import AutoreplyCursorRecord, AutoreplyMessageRecord
from continuity.store.campaigns import CampaignRun, CampaignVersion
from continuity.store.records import (
    EventRecord,
    LeaderSeat,
    LeaseRow,
    MaintenanceRecord,
    NodeRow,
    SituationRecord,
    StepRecord,
)
from continuity.store.users import SessionRecord, UserRecord


@runtime_checkable
class Store(Protocol):
    """A store of situations, the step ledger, the timeline, send marks, maintenance windows, the
    auto-responder's state and the campaign registry."""

    path: Path
    """Where the store lives; the auto-responder opens a second handle on it (`SqliteStore(path)`) for its
    own thread. A PostgresStore has no file: its `path` is a label below /dev/null that no SQLite opens."""

    # lifecycle and transactions --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the handle; nothing is called on it afterwards."""

    def reopen(self) -> Store:
        """A second, independent handle on the same store (for a worker thread of its own)."""

    def leadership(self, *, node: str, vantage: str, version: str, failover: float) -> LeaderSeat | None:
        """This daemon's seat in a cluster of daemons sharing the store (store/pg_cluster.py), or None when the
        store is one daemon's alone (SQLite): that daemon always leads."""

    def cluster_state(self) -> tuple[LeaseRow | None, list[NodeRow], datetime] | None:
        """The cluster's lease, its nodes and the database's clock now; None when the store has no cluster."""

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: all or nothing, serialised with every other process's (waiting for a busy store
        up to its busy timeout, then StoreBusy); an exception rolls it back; nested calls join the outer one."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A part of the current transaction (opening one if none is) that an exception undoes alone: the
        exception propagates, the transaction's earlier writes stay."""

    # situations ----------------------------------------------------------------------------------------

    def find_open(self, kind: str, channel: str) -> SituationRecord | None:
        """The open situation of this kind on this channel (there is at most one), or None."""

    def get_situation(self, situation_id: int) -> SituationRecord | None:
        """The situation with this id, open or closed, or None."""

    def open_situations(self) -> list[SituationRecord]:
        """Every open situation, by id."""

    def situations_since(self, since: datetime) -> list[SituationRecord]:
        """Situations opened or closed at or after `since`, and every open one, by id."""

    def ledger_mark(self) -> tuple[int, int, int]:
        """(highest situation id, highest step id, highest event id), 0 for none: it changes whenever a situation
        is opened, a step planned or an event written (the engine writes one at every update and close), so a
        cache of figures drawn from the ledger (the status page's uptime) learns in one look-up that it is stale."""

    def first_opened_at(self) -> datetime | None:
        """When the earliest situation opened, or None: before it the ledger knows nothing ("no data")."""

    def insert_situation(self, *, kind: str, channel: str, playbook: str, source: str, opened_by: str,
                         reason: str, eta: datetime | None, opened_at: datetime,
                         data: dict[str, Any] | None = None) -> int:
        """Add an open situation (revision 0) and return its id; a second open one of the same kind and
        channel is an integrity error."""

    def update_situation(self, situation_id: int, **fields: Any) -> None:
        """Set reason, eta, note, revision, state, closed_at, closed_by or data (KeyError for anything else)."""

    # steps (the ledger) ----------------------------------------------------------------------------------

    def insert_step(self, *, situation_id: int, key: str, phase: str, step_id: str, occurrence: int, action: str,
                    sink: str, template: str, reversible: bool, idempotent: bool, every_s: int | None,
                    due_at: datetime, undo_of: int | None = None, state: str = "planned") -> int | None:
        """Plan a step and return its row id; a key that exists already is left alone and gives None."""

    def steps_for(self, situation_id: int) -> list[StepRecord]:
        """The situation's steps, by due time and then id."""

    def get_step(self, step_row_id: int) -> StepRecord | None:
        """The step row with this id, or None."""

    def due_steps(self, now: datetime, situation_ids: Sequence[int] | None = None) -> list[StepRecord]:
        """Planned steps due by `now` and failed steps whose retry is due (of these situations), oldest first;
        an undo waits while the step it undoes is running."""

    def next_due(self) -> datetime | None:
        """The earliest due time of a planned step or retry time of a failed one, or None."""

    def pending_steps(self) -> list[StepRecord]:
        """Steps that will need running: planned, or failed with a retry time; by id."""

    def running_steps(self) -> list[StepRecord]:
        """Steps in state `running`, by id."""

    def set_step(self, step_row_id: int, *, expect: Sequence[str] | None = None, **fields: Any) -> bool:
        """Update a step's state, attempts, last_error, next_retry_at, started_at, finished_at, owner, late,
        detail or due_at (KeyError otherwise); with `expect`, only while it is in one of those states (a
        claim; an empty `expect` matches no state). True if the row changed."""

    # timeline --------------------------------------------------------------------------------------------

    def add_event(self, situation_id: int, at: datetime, kind: str, message: str) -> None:
        """Append an event to the situation's timeline."""

    def events_for(self, situation_id: int) -> list[EventRecord]:
        """The situation's timeline in the order it was written."""

    # send marks ------------------------------------------------------------------------------------------

    def send_marks(self, key: str) -> dict[str, tuple[str, str]]:
        """part ─► (state `ending` or `sent`, detail) for one action key."""

    def set_send_mark(self, key: str, part: str, state: str | None, at: datetime, detail: str = "") -> None:
        """Record a part's state durably before returning (its own transaction unless inside one); None forgets
        the part."""

    def settle_send_marks(self, key: str, sent: bool, at: datetime) -> int:
        """Resolve the key's `ending` parts: to `sent`, or forgotten (so they are sent again); returns how many."""

    # maintenance windows ---------------------------------------------------------------------------------

    def insert_maintenance(self, *, channel: str, starts_at: datetime, ends_at: datetime, notice_s: int,
                           reason: str, created_by: str, created_at: datetime) -> int:
        """Add a window in state `scheduled` and return its id."""

    def maintenance(self, include_ended: bool = False) -> list[MaintenanceRecord]:
        """Scheduled, announced and active windows (all with `include_ended`), by start and then id."""

    def get_maintenance(self, window_id: int) -> MaintenanceRecord | None:
        """The window with this id, or None."""

    def set_maintenance(self, window_id: int, *, state: str, situation_id: int | None = None) -> None:
        """Set a window's state, and its situation unless `situation_id` is None."""

    # auto-responder: the on-switch (read from the ledger) -------------------------------------------------

    def autoreply_switches(self, mailbox: str) -> list[tuple[int, str]]:
        """Distinct (situation id, template) of done `autoreply` steps (open or update phase) to `mailbox` of
        open situations, oldest situation first."""

    def autoreply_switched_on(self, situation_id: int, mailbox: str) -> datetime | None:
        """The earliest due time of the situation's done open-phase `autoreply` steps to `mailbox`, or None."""

    # auto-responder: cursor -------------------------------------------------------------------------------

    def autoreply_cursor(self, mailbox: str) -> AutoreplyCursorRecord | None:
        """The mailbox's cursor, or None before one was written."""

    def ensure_autoreply_cursor(self, mailbox: str, address: str) -> None:
        """Create the mailbox's cursor (last UID 0, no UIDVALIDITY) unless it exists; an existing one is kept."""

    def set_autoreply_cursor(self, mailbox: str, uidvalidity: int, last_uid: int, at: datetime) -> None:
        """Move an existing cursor to (uidvalidity, last_uid), updated at `at`."""

    def set_autoreply_ok(self, mailbox: str, at: datetime) -> None:
        """Record that an existing cursor's mailbox was reached at `at`; its last error stays."""

    def set_autoreply_error(self, mailbox: str, error: str, at: datetime) -> None:
        """Record an existing cursor's latest error and its time, replacing the previous one."""

    def autoreply_mailboxes(self) -> list[str]:
        """Every mailbox with a cursor or a message, sorted, without duplicates."""

    # auto-responder: messages -----------------------------------------------------------------------------

    def autoreply_message(self, mailbox: str, key: str) -> AutoreplyMessageRecord | None:
        """The message row of `key` in `mailbox`, or None if nothing was decided about it."""

    def autoreply_state(self, mailbox: str, key: str) -> tuple[str, str | None] | None:
        """(state, owner) of `key` in `mailbox`, or None if nothing was decided about it."""

    def autoreply_messages(self, mailbox: str, state: str) -> list[AutoreplyMessageRecord]:
        """The mailbox's messages in `state`, by UID and then decision time."""

    def insert_autoreply_skip(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                              received_at: datetime | None, reason: str, language: str | None,
                              situations: Sequence[int], decided_at: datetime) -> bool:
        """Record `key` as decided `skip`, state `skipped`; a key decided before is untouched. True if new."""

    def insert_autoreply_answer(self, mailbox: str, *, key: str, uidvalidity: int | None, uid: int | None,
                                received_at: datetime | None, language: str, situations: Sequence[int],
                                recipient: str, subject: str, in_reply_to: str | None, references: Sequence[str],
                                decided_at: datetime) -> bool:
        """Record `key` as decided `answer` (reason `ok`), state `queued`, 0 attempts, with all needed to send
        it; a key decided before is untouched. True if new."""

    def claim_autoreply(self, mailbox: str, key: str, owner: str, answer_id: str) -> bool:
        """queued ─► sending for `owner` (attempts + 1, `ending` cleared); True for exactly one of concurrent
        claimers, False if the row is not queued."""

    def set_autoreply_ending(self, mailbox: str, key: str) -> bool:
        """Set `ending` on a `sending` row (the final dot of DATA goes next); True if it was sending."""

    def set_autoreply_sent(self, mailbox: str, key: str, at: datetime) -> bool:
        """sending ─► sent at `at`, owner and last error cleared; True if it was sending."""

    def requeue_autoreply(self, mailbox: str, key: str, error: str) -> bool:
        """sending ─► queued with `error`, owner and `ending` cleared; True if it was sending."""

    def set_autoreply_uncertain(self, mailbox: str, key: str, error: str) -> bool:
        """sending ─► uncertain with `error`, owner cleared; True if it was sending. Never left by any method."""

    def set_autoreply_failed(self, mailbox: str, key: str, error: str) -> bool:
        """sending or queued ─► failed with `error`, owner cleared; True if it was in one of those."""

    def set_autoreply_closed(self, mailbox: str, key: str) -> bool:
        """queued ─► skipped with reason `closed`, owner cleared; True if it was queued."""

    # auto-responder: one answer per sender per situation per period ---------------------------------------

    def autoreply_last_answers(self, mailbox: str, sender: str, situations: Sequence[int]) -> dict[int, datetime]:
        """situation id ─► when `sender` last got an answer for it, for those of `situations` it got one for."""

    def set_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int], at: datetime) -> None:
        """Record that `sender` got an answer at `at` for each of `situations`, replacing earlier times."""

    def release_autoreply_answered(self, mailbox: str, sender: str, situations: Sequence[int]) -> None:
        """Forget `sender`'s answers for `situations` (an empty list forgets nothing)."""

    # auto-responder: status -------------------------------------------------------------------------------

    def autoreply_counts(self, mailbox: str) -> list[tuple[str, str, int]]:
        """(state, reason, number of messages) for each pair that occurs in `mailbox`."""

    def autoreply_last_failure(self, mailbox: str) -> str | None:
        """The error of the most recently decided `failed` message that has one, or None."""

    def autoreply_decided_between(self, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
        """(state, reason, number of messages) over every mailbox, of the messages decided in [since, until)."""

    # campaigns -------------------------------------------------------------------------------------------

    def campaign_runs(self, *, states: Sequence[str] | None = None, name: str | None = None) -> list[CampaignRun]:
        """Runs in one of `states` (None: any) of campaign `name` (None: any), by start and then id."""

    def latest_campaign_run(self, name: str) -> CampaignRun | None:
        """The run of `name` with the highest run number, in any state, or None."""

    def get_campaign_run(self, run_id: int) -> CampaignRun | None:
        """The run with this id, or None."""

    def insert_campaign_run(self, *, name: str, run: int, version: int, starts_at: datetime, ends_at: datetime,
                            opens_at: datetime, created_by: str, created_at: datetime) -> int:
        """Add run number `run` of `name`, state `registered`, updated at `created_at`; returns its id. A
        (name, run) that exists is an integrity error."""

    def set_campaign_run(self, run_id: int, *, at: datetime, expect: Sequence[str] | None = None,
                         **fields: Any) -> bool:
        """Update state, version, starts_at, ends_at, opens_at or situation_id (KeyError otherwise) and
        updated_at; with `expect`, only while in one of those states (a claim). True if the row changed."""

    def insert_campaign_version(self, *, name: str, created_by: str, created_at: datetime, source: str,
                                snapshot: dict[str, Any], changes: list[str]) -> int:
        """Store the next snapshot of `name` and return its number: 1, 2, … per name, never reused. Call it
        inside a transaction."""

    def get_campaign_version(self, name: str, version: int) -> CampaignVersion | None:
        """Snapshot number `version` of `name`, as stored, or None."""

    def campaign_versions(self, name: str) -> list[CampaignVersion]:
        """Every snapshot of `name`, oldest first."""

    # console users, sessions, failed sign-ins -------------------------------------------------------------

    def add_user(self, *, name: str, role: str, password_hash: str, at: datetime) -> None:
        """Add a console user (role oncall, marketing or viewer); an existing name is an integrity error."""

    def get_user(self, name: str) -> UserRecord | None:
        """The user of this name, or None."""

    def users(self) -> list[UserRecord]:
        """Every user, by name."""

    def remove_user(self, name: str) -> bool:
        """Remove a user and every session of theirs; True if there was one."""

    def set_user_password(self, name: str, password_hash: str, at: datetime) -> bool:
        """Replace a user's password hash and end their sessions; True if the user exists."""

    def insert_session(self, *, id_hash: str, user_name: str, csrf: str, created_at: datetime,
                       expires_at: datetime) -> None:
        """Record a session under the hash of its id (the id itself is never stored)."""

    def get_session(self, id_hash: str, now: datetime) -> SessionRecord | None:
        """The session with this id hash, unless it expired by `now`; else None."""

    def delete_session(self, id_hash: str) -> None:
        """End one session."""

    def purge_console(self, now: datetime, failures_before: datetime) -> int:
        """Forget expired sessions and failed sign-ins older than `failures_before`; the sessions removed."""

    def add_login_failure(self, *, user_name: str, address: str, at: datetime) -> None:
        """Note a failed sign-in as `user_name` (known or not) from `address`."""

    def login_failures(self, *, user_name: str, address: str, since: datetime) -> int:
        """The failed sign-ins as `user_name` from `address` since `since`."""

    def clear_login_failures(self, *, user_name: str, address: str) -> None:
        """Forget the failed sign-ins as `user_name` from `address`."""


if TYPE_CHECKING:
    from continuity.store.sqlite import SqliteStore

    def _sqlite_is_a_store(store: SqliteStore) -> Store:  # mypy checks the structure here
        return store
