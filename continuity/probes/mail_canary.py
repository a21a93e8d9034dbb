"""Does mail actually arrive? Send a tagged message over SMTP and wait for it in the IMAP mailbox.

An SMTP server that accepts mail and an IMAP server that logs in can both be fine while mail is stuck in a
queue, a filter or a broken delivery agent: only a message that went all the way proves the channel. The
canary is then deleted, and only the canary: it is flagged and expunged by UID (UIDPLUS); a server without
UIDPLUS is only told to EXPUNGE when no other message is flagged deleted, so customers' mail that someone
flagged but has not expunged is never removed by this probe.
"""

from __future__ import annotations

import asyncio
import functools
import imaplib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from continuity.config.envrefs import Secret
from continuity.config.models import Duration
from continuity.net.imap import ImapFailure, ImapSession, imap_reason
from continuity.net.reason import seconds
from continuity.net.smtp import close_smtp, open_smtp, smtp_reason
from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings
from continuity.threads import in_thread

Security = Literal["none", "starttls", "tls"]
HEADER = "X-Continuity-Canary"
# Canaries that arrived after their check gave up are looked for (and deleted) by the next checks.
MAX_PENDING = 50
T = TypeVar("T")


class MailCanarySettings(ProbeSettings):
    """How to send the canary, where it should land, and how long it may take."""

    type: Literal["mail_canary"] = "mail_canary"
    timeout: Duration = timedelta(seconds=90)
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Security = "none"
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    sender: str
    recipient: str
    imap_host: str = Field(min_length=1)
    imap_port: int = Field(default=143, ge=1, le=65535)
    imap_security: Security = "none"
    imap_username: str = Field(min_length=1)
    imap_password: Secret
    mailbox: str = Field(default="INBOX", min_length=1)
    poll_every: Duration = timedelta(seconds=1)
    deadline: Duration = timedelta(seconds=60)
    verify_tls: bool = True

    @field_validator("sender", "recipient")
    @classmethod
    def _address(cls, value: str) -> str:
        # Newlines would let a value smuggle headers into the message.
        if "\n" in value or "\r" in value or "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MailCanarySettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together: set both or neither")
        if self.deadline <= timedelta(0):
            raise ValueError("deadline must be longer than 0s")
        if self.timeout < self.deadline:
            raise ValueError("timeout must be at least the deadline (the probe waits up to `deadline` for the "
                             "canary, plus the time to send it and log in)")
        if not timedelta(0) < self.poll_every <= self.deadline:
            raise ValueError("poll_every must be longer than 0s and at most the deadline")
        return self


def canary_message(tag: str, sender: str, recipient: str, date: str) -> EmailMessage:
    """The canary: tagged in a header (what the probe searches for) and in the subject (what people see)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "continuity"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = f"continuity mail check {tag}"
    msg["Date"] = date
    msg["Message-ID"] = f"<canary-{tag}@{domain}>"
    msg[HEADER] = tag
    # Keeps auto-responders and out-of-office replies quiet (RFC 3834; the second for Exchange).
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content("An automatic check that mail reaches this mailbox. It deletes itself; please ignore it.\n")
    return msg


class MailCanaryProbe(Probe):
    """Sends a uniquely tagged message and reports how long it took to show up in the mailbox."""

    type_name = "mail_canary"
    Settings = MailCanarySettings
    description = "a tagged message sent over SMTP arrives in the IMAP mailbox within the deadline (then deleted)"

    settings: MailCanarySettings

    def __init__(self, settings: ProbeSettings, context: ProbeContext) -> None:
        super().__init__(settings, context)
        self._pending: OrderedDict[str, None] = OrderedDict()

    @property
    def pending(self) -> list[str]:
        """Tags of canaries sent but not yet seen and deleted."""
        return list(self._pending)

    async def check(self) -> ProbeResult:
        s = self.settings
        started = time.perf_counter()
        deadline = s.deadline.total_seconds()
        phase = "logging in to the mailbox"
        # The IMAP thread stops on its own by this deadline; the asyncio timeout is the backstop.
        session = ImapSession(s.imap_host, s.imap_port, s.imap_security, s.verify_tls,
                              time.monotonic() + self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    # The mailbox first: a canary sent while IMAP is broken could not be cleaned up.
                    uidplus = await self._imap(session, self._open, session)
                    if self._pending:
                        phase = "removing earlier canaries"
                        await self._imap(session, self._sweep, session, uidplus)
                    phase = "sending the canary"
                    tag = uuid.uuid4().hex
                    sent_at = time.perf_counter()
                    failure = await self._send(tag)
                    if failure:
                        return self.result("down", started, f"sending: {failure}")
                    self._remember(tag)
                    phase = "waiting"
                    while True:
                        uids = await self._imap(session, self._find, session, tag)
                        delivered = time.perf_counter() - sent_at
                        if uids:
                            phase = "deleting the canary"
                            note = await self._imap(session, self._delete, session, uids, uidplus)
                            if not note:
                                self._pending.pop(tag, None)
                            return ProbeResult("up", delivered, note, self.label)
                        if delivered >= deadline:
                            return self.result("down", started, f"canary not delivered within {seconds(deadline)}")
                        await asyncio.sleep(min(s.poll_every.total_seconds(), deadline - delivered))
                finally:
                    await in_thread(session.close)
        except TimeoutError:
            if phase == "waiting":
                return self.result("down", started, f"canary not delivered within {seconds(deadline)}")
            return self.result("down", started, f"timed out after {seconds(self.timeout)} while {phase}")
        except (ImapFailure, imaplib.IMAP4.error, OSError) as exc:
            reason = imap_reason(exc, self.timeout, s.imap_password.get_secret_value())
            return self.result("down", started, f"mailbox: {reason}")

    async def _imap(self, session: ImapSession, step: Callable[..., T], *args: Any) -> T:
        """One blocking IMAP step in a worker thread, never overlapping another on the same connection."""
        return await in_thread(session.exclusive, functools.partial(step, *args))

    def _remember(self, tag: str) -> None:
        self._pending[tag] = None
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    async def _send(self, tag: str) -> str:
        """Send the canary; the reason it could not be sent, or "" when the server took it."""
        import aiosmtplib

        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password is not None else None
        msg = canary_message(tag, s.sender, s.recipient, format_datetime(self.context.clock.now()))
        try:
            smtp = await open_smtp(s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_username, password,
                                   s.verify_tls, self.timeout)
            try:
                await smtp.send_message(msg, sender=parseaddr(s.sender)[1], recipients=[parseaddr(s.recipient)[1]])
            finally:
                await close_smtp(smtp)
        except (aiosmtplib.SMTPException, OSError) as exc:
            if isinstance(exc, TimeoutError) and not isinstance(exc, aiosmtplib.SMTPTimeoutError):
                raise  # the probe's own timeout: reported by check()
            return smtp_reason(exc, self.timeout, password)
        return ""

    # Blocking IMAP steps, run in a worker thread.

    def _open(self, session: ImapSession) -> bool:
        """Log in and open the mailbox for writing; does the server expunge by UID (UIDPLUS)?"""
        s = self.settings
        session.open()
        session.login(s.imap_username, s.imap_password.get_secret_value())
        session.select(s.mailbox, readonly=False)
        return "UIDPLUS" in session.capabilities()

    def _find(self, session: ImapSession, tag: str) -> list[str]:
        session.noop()  # lets the server report mail that arrived since the last poll
        return session.uid_search("HEADER", HEADER, tag)

    def _sweep(self, session: ImapSession, uidplus: bool) -> None:
        """Delete canaries of earlier checks that arrived after those checks gave up."""
        for tag in list(self._pending):
            uids = session.uid_search("HEADER", HEADER, tag)
            if uids and not self._delete(session, uids, uidplus):
                self._pending.pop(tag, None)

    def _delete(self, session: ImapSession, uids: list[str], uidplus: bool) -> str:
        """Remove exactly these messages; a note when they could only be flagged, "" when they are gone."""
        uid_set = ",".join(uids)
        session.uid_flag_deleted(uid_set)
        if uidplus:
            session.uid_expunge(uid_set)
            return ""
        # Without UIDPLUS, EXPUNGE removes every \Deleted message: only when the flagged ones are all ours.
        flagged = set(session.uid_search("DELETED"))
        if flagged <= set(uids):
            session.expunge()
            return ""
        return "canary flagged deleted but not expunged (no UIDPLUS, and other messages are flagged deleted)"
