"""The responder for one mailbox: watch it, decide about each new message, answer over pooled SMTP.

    ledger says on? ─► IMAP: UID SEARCH above the cursor ─► INTERNALDATE ─► BODY.PEEK[] ─► parse
        ─► rules (loop and spam safety) ─► one answer per sender per situation per period ─► language
        ─► row `queued` (cursor moves on) ─► SMTP MAIL, RCPT, DATA ─► row `sending` at its final dot (claimed
        and marked in one durable commit) ─► the message and the dot ─► row `sent` (with the next commit)
    then IDLE (or sleep) up to one poll interval, and look at the ledger again.

The ledger is the switch: an `autoreply` step to this mailbox, done and not undone, of an open situation
(continuity.autoreply.state.active_parts). Only messages whose INTERNALDATE is at or after a situation's
opening (for a campaign: its launch, when the step switched on) are answered for it, and one answer covers
every such situation. Each queued row holds all it
needs to be sent, so the cursor moves on as soon as a batch is decided, and a restart first sends what
was left queued. An answer whose final dot of DATA had gone to the server when the process died is
`uncertain` and never sent again; one that had not got that far is queued again.

An IMAP failure closes the connection, records the error and retries with backoff from the stored cursor;
an SMTP failure pauses sending (the pool's backoff) with the answers kept queued: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import imaplib
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from continuity.autoreply.compose import Composer, answer_id, reply_recipient
from continuity.autoreply.imapwatch import Fetched, MailboxReader
from continuity.autoreply.smtppool import SmtpPermanent, SmtpPool, SmtpTemporary, SmtpUncertain
from continuity.autoreply.state import AutoreplyState, Part, Pending
from continuity.errors import ContinuityError
from continuity.logs import event
from continuity.net.imap import ImapFailure, imap_reason
from continuity.net.reason import scrub

if TYPE_CHECKING:
    from continuity.clock import Clock
    from continuity.config.loader import LoadedConfig
    from continuity.sinks.autoreply import AutoreplySettings
    from continuity.store.protocol import Store
    from continuity.store.sqlite import SqliteStore

T = TypeVar("T")
CHUNK = 250  # messages fetched and decided at a time
PARTS_MAX_AGE = 0.5  # seconds the ledger's answer "on for these situations" is reused while sending
LATER_MAX_DELAY = 0.05  # seconds a write nobody waits for may wait for a transaction to share


class StoreWorker:
    """The responder's own connection to the store, used from one thread of its own.

    Every write that must be durable before the next step (a row `sending` before SMTP) waits for its commit,
    but concurrent senders share commits: writes that arrive while one transaction commits go into the next
    one together (group commit). With the ledger's synchronous=FULL a commit costs an fsync, and one fsync per
    answer, not the SMTP round trips, would otherwise set the pace. The event loop never waits on the disk.

    A write nobody needs to wait for (an answer's `sent` mark: what may be sent again is already settled by its
    `ending` mark) is queued by `write_later`: it joins the next transaction that someone waits for, in order,
    so it is durable before any later durable mark, or commits on its own within LATER_MAX_DELAY.
    """

    def __init__(self, store: Path | Store, name: str) -> None:
        from continuity.store.sqlite import SqliteStore

        # Its own handle on the same store (SQLite file or PostgreSQL database), used from its own thread.
        self.store = SqliteStore(store) if isinstance(store, Path) else store.reopen()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"autoreply-db-{name}")
        self._pending: list[tuple[Callable[[], Any], asyncio.Future[Any] | None]] = []
        self._flushing = False
        self._timer: asyncio.TimerHandle | None = None

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(func, *args))

    async def write(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func` in a transaction shared with the other writes waiting now; return once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((functools.partial(func, *args), future))
        self._kick()
        return await future

    def write_later(self, func: Callable[..., Any], *args: Any) -> None:
        """Run `func` in the next transaction without waiting for it (see the class). A failure is logged."""
        self._pending.append((functools.partial(func, *args), None))
        if not self._flushing and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(LATER_MAX_DELAY, self._kick)

    async def drain(self) -> None:
        """Commit every write still waiting."""
        if self._pending or self._flushing:
            await self.write(_nothing)

    def _kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await loop.run_in_executor(self.executor, self._apply, [op for op, _ in batch])
                except Exception as exc:  # the commit itself failed: every write of the batch did
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future is None:
                        if isinstance(result, BaseException):
                            logging.getLogger("continuity").error(
                                f"a store write failed: {type(result).__name__}: {result}",
                                extra={"event": "autoreply.store_error", "fields": {}})
                        continue
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                if all(future is None for _, future in self._pending):
                    break  # only writes nobody waits for: they wait a moment for company (the timer below)
        finally:
            self._flushing = False
            if self._pending and self._timer is None:
                self._timer = loop.call_later(LATER_MAX_DELAY, self._kick)

    def _apply(self, ops: list[Callable[[], Any]]) -> list[Any]:
        # Usually no write fails: the batch runs as it is, one transaction, no savepoints to open and release.
        # Should one raise, that transaction is rolled back whole and the batch runs again below, a savepoint
        # each. (A failing COMMIT is not a failing write: it fails the batch, as it always did.)
        done: list[Any] = []
        try:
            with self.store.transaction():
                for op in ops:
                    done.append(op())
            return done
        except Exception:
            if len(done) == len(ops):
                raise
        out: list[Any] = []
        with self.store.transaction():
            for op in ops:
                # A savepoint each: one failing write is undone alone, the others of the batch still commit.
                try:
                    with self.store.savepoint():
                        result = op()
                except Exception as exc:
                    out.append(exc)
                else:
                    out.append(result)
        return out

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.executor.submit(self.store.close).result()
        self.executor.shutdown(wait=True)


def _nothing() -> None:
    return None
_MSGID = re.compile(r"^<[^<>\s]{1,500}>$")


@dataclass(frozen=True)
class Decided:
    """One fetched message, decided (outside the database lock)."""

    fetched: Fetched
    received_at: datetime
    key: str
    reason: str
    situations: list[int]
    pending: Pending | None
    detail: str = ""  # why, for the log: the rule's detail and what was odd about the message


def _floor(when: datetime) -> datetime:
    # INTERNALDATE has whole seconds: a message in the opening's own second counts as after it.
    return when.replace(microsecond=0)


class Responder:
    """Answers one mailbox (the `autoreply` sink called `name`) while the ledger says it is on."""

    def __init__(self, name: str, settings: AutoreplySettings, loaded: LoadedConfig, store: SqliteStore,
                 clock: Clock, log: logging.Logger | None = None, *, owner: str | None = None,
                 first_delay: float = 1.0, max_delay: float = 300.0,
                 on_outcome: Callable[[str], None] | None = None) -> None:
        from continuity.autoreply.rules import Policy
        from continuity.owners import current_owner

        self.name = name
        self.settings = settings
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.log = log or logging.getLogger("continuity")
        self.owner = owner or current_owner()
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.on_outcome = on_outcome
        self.db = StoreWorker(store, name)
        self.state = AutoreplyState(self.db.store, name)
        self._parts: tuple[float, list[Part]] = (0.0, [])
        self.reader = MailboxReader(settings)
        self.pool = SmtpPool(settings, settings.max_smtp_connections, first_delay=first_delay, max_delay=max_delay)
        self.composer = Composer(loaded, clock)
        self.policy = Policy(mailbox=settings.address, own_addresses=settings.addresses,
                             require_addressed=settings.require_addressed)
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()  # also seen by the IMAP thread while it idles
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"autoreply-{name}")

    # lifecycle ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop soon: no new answer starts, an IDLE ends at once, answers in flight finish."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _io(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking IMAP step in this responder's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(func, *args))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up within 0.2 s of stop()."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while not self._stop.is_set():
            left = end - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(min(0.2, left))

    def _count(self, outcome: str) -> None:
        self.counts[outcome] += 1
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    async def run(self) -> None:
        """Answer until the ledger says off, or stop() is called."""
        from continuity.autoreply.language import warm_up
        from continuity.owners import owner_alive

        s = self.settings
        try:
            uncertain = await self.db.write(self.state.recover, owner_alive)
            for key in uncertain:
                self._count("uncertain")
                event(self.log, "autoreply.uncertain", f"{self.name}: an answer was being sent when the responder "
                      "stopped; it may have gone out and is not sent again", logging.WARNING, mailbox=self.name,
                      message=key)
            event(self.log, "autoreply.on", f"{self.name}: answering new mail to {s.address}", mailbox=self.name)
            await self._io(warm_up)
            await self._deliver_all(await self.db.call(self.state.queued))
            delay = self.first_delay
            while not self._stop.is_set():
                parts = await self._active(fresh=True)
                if not parts:
                    break
                try:
                    if not self.reader.connected:
                        await self._io(self.reader.connect)
                        await self.db.write(self.state.note_ok, s.address, self.clock.now())
                    await self.sweep(parts)
                    delay = self.first_delay
                    await self._wait_for_mail()
                except (ImapFailure, imaplib.IMAP4.error, OSError) as exc:
                    reason = imap_reason(exc, s.timeout.total_seconds(), s.imap_password.get_secret_value())
                    await self.db.write(self.state.note_error, s.address, f"IMAP {s.imap_host}: {reason}",
                                        self.clock.now())
                    event(self.log, "autoreply.imap_error", f"{self.name}: IMAP {reason}; retrying in {delay:g}s",
                          logging.WARNING, mailbox=self.name)
                    await self._io(self.reader.close)
                    await self._sleep(delay)
                    delay = min(self.max_delay, delay * 2)
                except Exception as exc:  # imaplib on a closed socket (ValueError), a bug: never die, retry
                    self.log.exception(f"{self.name}: unexpected error, retrying in {delay:g}s",
                                       extra={"event": "autoreply.error", "fields": {"mailbox": self.name}})
                    await self.db.write(self.state.note_error, s.address, scrub(
                        f"IMAP {s.imap_host}: {type(exc).__name__}: {exc}", *s.secrets(), limit=300),
                                        self.clock.now())
                    await self._io(self.reader.close)
                    await self._sleep(delay)
                    delay = min(self.max_delay, delay * 2)
        finally:
            await self._io(self.reader.close)
            await self.pool.aclose()
            try:
                await self.db.drain()  # the `sent` marks still waiting for a transaction
            except Exception:
                self.log.exception(f"{self.name}: could not record the last answers' outcome",
                                   extra={"event": "autoreply.error", "fields": {"mailbox": self.name}})
            self._executor.shutdown(wait=False)
            await asyncio.get_running_loop().run_in_executor(None, self.db.close)
            event(self.log, "autoreply.off", f"{self.name}: not answering ({dict(self.counts)})", mailbox=self.name)

    async def _wait_for_mail(self) -> None:
        poll = self.settings.poll_interval.total_seconds()
        if self.reader.can_idle:
            await self._io(self.reader.idle, poll, self._stop)
        else:
            await self._sleep(poll)

    # reading and deciding -----------------------------------------------------------------------------------

    async def sweep(self, parts: list[Part]) -> None:
        """Everything new since the cursor: fetch a chunk (the next one is fetched while this one is sent),
        decide, record, move the cursor, answer."""
        cursor = await self.db.call(self.state.cursor)
        uidvalidity = self.reader.uidvalidity
        after = cursor.last_uid if cursor.uidvalidity == uidvalidity else 0
        if cursor.uidvalidity is not None and cursor.uidvalidity != uidvalidity:
            event(self.log, "autoreply.uidvalidity", f"{self.name}: the mailbox was rebuilt (UIDVALIDITY changed); "
                  "reading it again, answered messages are recognised by Message-ID", logging.WARNING,
                  mailbox=self.name)
        earliest = min(p.answers_from for p in parts)
        if not self.reader.can_idle:
            await self._io(self.reader.noop)
        uids = await self._io(self.reader.search, after, earliest - timedelta(days=1))
        if not uids:
            return
        chunks = [uids[i:i + CHUNK] for i in range(0, len(uids), CHUNK)]
        fetching: asyncio.Future[list[tuple[Fetched, datetime]]] = asyncio.ensure_future(
            self._io(self._fetch, chunks[0], earliest))
        for i, chunk in enumerate(chunks):
            fetched = await fetching
            if i + 1 < len(chunks):
                fetching = asyncio.ensure_future(self._io(self._fetch, chunks[i + 1], earliest))
            parts = await self._active(fresh=True)
            if not parts or self._stop.is_set():
                if i + 1 < len(chunks):
                    await fetching
                return
            decided = self._decide(fetched, parts)
            pendings, skipped = await self.db.write(self._record, decided, uidvalidity, chunk[-1])
            self._note_batch(len(decided), pendings, skipped)
            await self._deliver_all(pendings)

    def _fetch(self, chunk: list[int], earliest: datetime) -> list[tuple[Fetched, datetime]]:
        """(In the IMAP thread.) Bodies of the messages of `chunk` that arrived after the earliest opening."""
        dates = self.reader.dates(chunk)
        wanted = [u for u in chunk if u in dates and dates[u] >= _floor(earliest)]
        return [(f, dates[f.uid]) for f in self.reader.bodies(wanted) if f.uid in dates]

    def _decide(self, fetched: list[tuple[Fetched, datetime]], parts: list[Part]) -> list[Decided]:
        """Parse, apply the rules and choose the language: no database lock is held meanwhile."""
        from continuity.autoreply.language import choose_language
        from continuity.autoreply.message import parse
        from continuity.autoreply.rules import decide

        out: list[Decided] = []
        for f, received in fetched:
            applicable = sorted({p.situation.id for p in parts if received >= _floor(p.answers_from)})
            if not applicable:
                continue  # it arrived before every open situation: not ours to answer
            msg = parse(f.raw)
            decision = decide(msg, self.policy)
            reason, pending = decision.reason, None
            if decision.answer:
                recipient = reply_recipient(msg)
                if recipient is None:
                    reason = "no-sender"
                elif recipient in self.settings.addresses:
                    reason = "own-address"  # a Reply-To pointing back at us
                elif not recipient.isascii():
                    reason = "unsupported-address"  # an internationalised address needs SMTPUTF8
                else:
                    language = choose_language(msg, self.composer.served, self.composer.default_locale)
                    in_reply_to = msg.message_id if msg.message_id and _MSGID.match(msg.message_id) else None
                    pending = Pending(key=msg.key, uid=f.uid, recipient=recipient, subject=msg.subject,
                                      in_reply_to=in_reply_to,
                                      references=tuple(r for r in msg.references if _MSGID.match(r)),
                                      language=language, situations=tuple(applicable), attempts=0)
            detail = "; ".join(filter(None, [decision.detail, *msg.problems[:3]]))
            out.append(Decided(f, received, msg.key, reason, applicable, pending, detail))
        return out

    def _record(self, decided: list[Decided], uidvalidity: int,
                last_uid: int) -> tuple[list[Pending], list[tuple[Decided, str]]]:
        """(In the store's thread, inside its transaction.) Write every decision and move the cursor past the
        chunk; the per-sender period is checked here, so two messages of one sender (in this batch or across
        restarts) get one answer."""
        now = self.clock.now()
        period = self.settings.period
        queued: list[Pending] = []
        skipped: list[tuple[Decided, str]] = []
        for d in decided:
            if self.state.state_of(d.key) is not None:
                continue  # answered or skipped before (a restart, or the same Message-ID twice)
            p = d.pending
            reason = d.reason
            if p is not None:
                last = self.state.last_answers(p.recipient, list(p.situations))
                if all(sid in last and now - last[sid] < period for sid in p.situations):
                    reason, p = "rate-limited", None
            if p is None:
                self.state.record_skip(key=d.key, uidvalidity=uidvalidity, uid=d.fetched.uid,
                                       received_at=d.received_at, reason=reason, language=None,
                                       situations=d.situations, now=now)
                skipped.append((d, reason))
                continue
            self.state.record_queued(p, uidvalidity=uidvalidity, received_at=d.received_at, now=now)
            queued.append(p)
        self.state.set_cursor(self.settings.address, uidvalidity, last_uid, now)
        return queued, skipped

    def _note_batch(self, decided: int, queued: list[Pending], skips: list[tuple[Decided, str]]) -> None:
        skipped: Counter[str] = Counter()
        for d, reason in skips:
            skipped[reason] += 1
            self._count(f"skipped:{reason}")
            # One line per message left unanswered, named by its UID (customers' addresses stay out of the
            # log), so an operator can find it in the mailbox and see why.
            event(self.log, "autoreply.skipped", f"{self.name}: message UID {d.fetched.uid} not answered: {reason}"
                  + (f" ({d.detail})" if d.detail else ""), mailbox=self.name, uid=d.fetched.uid, reason=reason)
        if decided:
            event(self.log, "autoreply.batch", f"{self.name}: {len(queued)} to answer, {sum(skipped.values())} "
                  "skipped" + (f" ({', '.join(f'{r}: {n}' for r, n in skipped.items())})" if skipped else ""),
                  mailbox=self.name, queued=len(queued), skipped=sum(skipped.values()))

    async def _active(self, fresh: bool = False) -> list[Part]:
        """The ledger's open situations for this mailbox, re-read at most every PARTS_MAX_AGE seconds."""
        at, parts = self._parts
        if fresh or time.monotonic() - at > PARTS_MAX_AGE:
            parts = await self.db.call(self.state.parts)
            self._parts = (time.monotonic(), parts)
        return parts

    # answering ----------------------------------------------------------------------------------------------

    async def _deliver_all(self, pendings: list[Pending]) -> None:
        if pendings:
            await asyncio.gather(*(self._deliver(p) for p in pendings))

    async def _deliver(self, p: Pending) -> None:
        """Send one queued answer: wait out pauses, give up only on a permanent refusal or when every
        situation it was for has closed."""
        s = self.settings
        envelope = "" if s.null_sender else s.address
        while not self._stop.is_set():
            wait = self.pool.delay_left()
            if wait > 0:
                await self._sleep(wait)
                continue
            active = {part.situation.id: part for part in await self._active()}
            live = [active[sid] for sid in p.situations if sid in active]
            if not live:
                await self.db.write(self.state.mark_closed, p.key)
                self._count("skipped:closed")
                return
            try:
                data = self.composer.answer_bytes(p, live, s, self.name)
            except (ContinuityError, ValueError) as exc:
                await self.db.write(self.state.mark_failed, p.key, f"cannot write the answer: {exc}")
                self._count("failed")
                event(self.log, "autoreply.failed", f"{self.name}: cannot write the answer: {exc}", logging.ERROR,
                      mailbox=self.name)
                return
            aid = answer_id(s.address, self.name, p.key)
            claimed = False

            async def claim_to_end(key: str = p.key, aid: str = aid) -> bool:
                # MAIL, RCPT and DATA went through: claim the answer and mark it at its final dot, one durable
                # commit (shared with the other connections' answers), before the message and the dot go out.
                nonlocal claimed
                claimed = await self.db.write(self.state.claim_to_end, key, self.owner, aid)
                return claimed

            try:
                async with self.pool.lease() as lease:
                    if self._stop.is_set():
                        return
                    try:
                        if not await lease.send(data, envelope, p.recipient, claim_to_end):
                            return  # not queued any more: another process has it; nothing was delivered
                    except SmtpTemporary as exc:
                        if claimed:
                            await self.db.write(self.state.requeue, p.key, str(exc))
                        else:
                            await self.db.write(self.state.requeue_unclaimed, p.key, self.owner, aid, str(exc))
                        raise
                    except SmtpPermanent as exc:
                        if claimed:
                            await self.db.write(self.state.mark_failed, p.key, str(exc))
                        else:
                            await self.db.write(self.state.fail_unclaimed, p.key, self.owner, aid, str(exc))
                        self._count("failed")
                        event(self.log, "autoreply.failed", f"{self.name}: answer to a message refused: {exc}",
                              logging.WARNING, mailbox=self.name)
                        return
                    except SmtpUncertain as exc:
                        await self.db.write(self.state.mark_uncertain, p.key, str(exc))
                        self._count("uncertain")
                        event(self.log, "autoreply.uncertain", f"{self.name}: {exc} while sending an answer; it "
                              "may have gone out and is not sent again", logging.WARNING, mailbox=self.name)
                        return
                    sent_at = self.clock.now()
                # The connection already carries the next answer; this one's mark joins the next transaction
                # (its `ending` mark already keeps it from being sent again).
                self.db.write_later(self.state.mark_sent, p.key, sent_at)
                self._count("sent")
                return
            except SmtpTemporary as exc:
                await self.db.write(self.state.note_error, s.address, f"SMTP {s.smtp_host}: {exc}", self.clock.now())
                event(self.log, "autoreply.smtp_wait", f"{self.name}: SMTP {exc}; answers wait "
                      f"{self.pool.delay_left():.1f}s", logging.WARNING, mailbox=self.name)
