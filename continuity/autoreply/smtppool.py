"""A small pool of reused SMTP connections (aiosmtplib) for the responder's answers.

A backlog of thousands of answers must not open thousands of connections: up to `size` connections are
kept open and each carries one answer after another (MAIL, RCPT, DATA; RSET after a refusal). Failures are
sorted by what they mean for the answer:

    SmtpTemporary   4xx, refused or dropped connection before DATA: it did NOT go out; try again later.
                    The whole pool then waits (exponential backoff), so a rate-limiting server is not hammered
                    by the other connections meanwhile.
    SmtpPermanent   5xx for this answer: it did not go out and never will as it is.
    SmtpUncertain   the server had the final dot of DATA and its reply never came: it may have gone out.
                    (A failure before the final dot did not deliver anything: SmtpTemporary.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from continuity.net.reason import scrub

if TYPE_CHECKING:
    import aiosmtplib

    from continuity.sinks.autoreply import AutoreplySettings


class SmtpTemporary(Exception):
    """Not sent, for a reason that passes (4xx, no connection): send again after a pause."""


class SmtpPermanent(Exception):
    """Refused for good (5xx): not sent."""


class SmtpUncertain(Exception):
    """The connection broke while the message was being transferred: it may or may not have gone out."""


class _Declined(Exception):
    """The caller said no at the final dot (the answer is not ours to send any more)."""


class Lease:
    """One pooled connection, lent for one answer."""

    def __init__(self, pool: SmtpPool, smtp: aiosmtplib.SMTP, reused: bool) -> None:
        self.pool = pool
        self.smtp = smtp
        self.reused = reused
        self.usable = True

    async def send(self, message: bytes, sender: str, recipient: str,
                   before_end: Callable[[], Awaitable[bool]]) -> bool:
        """MAIL, RCPT, DATA, then `before_end()`, then the message and its final dot in one write.

        `before_end` runs once the server has said 354 and nothing has been delivered yet: the caller claims the
        answer and records durably that it is about to end the message. If it returns False the connection is
        dropped without the dot (the server discards what it had) and send returns False. Everything before the
        dot is a safe retry; a lost reply after it is uncertain. Raises SmtpTemporary, SmtpPermanent or
        SmtpUncertain.

        The commands go straight to aiosmtplib's protocol (one write and one reply each), without its
        per-command address parsing and locking: a backlog's answers spent more CPU there than in the
        responder's own work. Addresses that need SMTPUTF8 take net.smtp's general path."""
        import aiosmtplib

        if not (sender + recipient).isascii():
            return await self._send_utf8(message, sender, recipient, before_end)
        timeout = self.pool.settings.timeout.total_seconds()
        for attempt in (1, 2):
            try:
                body = await self._envelope(message, sender, recipient, timeout)
            except aiosmtplib.SMTPResponseException as exc:
                # The server refused the envelope or DATA: it did not take the answer.
                if exc.code == 421 or not self.smtp.is_connected:
                    self.usable = False
                raise self.pool.refusal(exc) from None
            except aiosmtplib.SMTPServerDisconnected:
                if attempt == 1 and self.reused:
                    # An idle connection the server closed meanwhile: nothing was sent, open a fresh one.
                    self.smtp.close()
                    self.smtp = await self.pool.connect()
                    self.reused = False
                    continue
                self.usable = False
                self.pool.failed()  # a dropped line pauses the pool like a 4xx: no tight reconnect loop
                raise SmtpTemporary("the mail server closed the connection before the answer was sent") from None
            except (aiosmtplib.SMTPException, OSError) as exc:
                self.usable = False
                self.pool.failed()
                raise SmtpTemporary(self.pool.reason(exc)) from None
            break
        if not await before_end():
            self.usable = False
            self.smtp.close()
            return False
        protocol = self.smtp.protocol
        try:
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("the connection closed before the message was sent")
            protocol.write(body + b".\r\n")
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Nothing was written: the connection had closed. Not delivered.
            self.usable = False
            self.pool.failed()
            raise SmtpTemporary(self.pool.reason(exc)) from None
        try:
            reply = await protocol.read_response(timeout=timeout)
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            self.usable = False
            self.smtp.close()
            self.pool.failed()
            raise SmtpUncertain(self.pool.reason(exc)) from None
        if reply.code != 250:
            # A refusal after the dot is final for this copy: the server did not take it.
            if reply.code == 421 or not self.smtp.is_connected:
                self.usable = False
            raise self.pool.refusal(aiosmtplib.SMTPDataError(reply.code, reply.message)) from None
        self.pool.succeeded()
        return True

    async def _envelope(self, message: bytes, sender: str, recipient: str, timeout: float) -> bytes:
        """MAIL, RCPT and DATA up to the server's 354; the message as it travels inside DATA (without the
        dot); RSET after a refusal, which is raised as aiosmtplib's exception for that command."""
        import aiosmtplib

        from continuity.net.smtp import data_bytes

        protocol = self.smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("the connection closed before the message was sent")
        body = data_bytes(message)
        mail = b"MAIL FROM:<" + sender.encode("ascii") + b">"
        if self.smtp.supports_extension("size"):
            mail += b" SIZE=%d" % (len(body) + 3)
        if not message.isascii() and self.smtp.supports_extension("8BITMIME"):
            mail += b" BODY=8BITMIME"
        steps: list[tuple[bytes, tuple[int, ...], Callable[[int, str], Exception]]] = [
            (mail, (250,), lambda code, text: aiosmtplib.SMTPSenderRefused(code, text, sender)),
            (b"RCPT TO:<" + recipient.encode("ascii") + b">", (250, 251),
             lambda code, text: aiosmtplib.SMTPRecipientRefused(code, text, recipient)),
            (b"DATA", (354,), aiosmtplib.SMTPDataError),
        ]
        for command, expected, refused in steps:
            reply = await protocol.execute_command(command, timeout=timeout)
            if reply.code not in expected:
                await self._reset(timeout)
                raise refused(reply.code, reply.message)
        return body

    async def _reset(self, timeout: float) -> None:
        """RSET after a refusal, so the connection can carry the next answer; a failure here is not news."""
        import aiosmtplib

        try:
            if self.smtp.is_connected:
                await self.smtp.rset(timeout=timeout)
        except (aiosmtplib.SMTPException, OSError):
            pass

    async def _send_utf8(self, message: bytes, sender: str, recipient: str,
                         before_end: Callable[[], Awaitable[bool]]) -> bool:
        """The general path (net.smtp.send_phased), for addresses that need SMTPUTF8."""
        import aiosmtplib

        from continuity.net.smtp import AfterEnd, send_phased

        async def claim() -> None:
            if not await before_end():
                raise _Declined

        try:
            await send_phased(self.smtp, message, sender, recipient, claim, self.pool.settings.timeout.total_seconds())
        except _Declined:
            self.usable = False
            self.smtp.close()
            return False
        except AfterEnd as exc:
            self.usable = False
            self.pool.failed()
            raise SmtpUncertain(self.pool.reason(exc.cause)) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or not self.smtp.is_connected:
                self.usable = False
            raise self.pool.refusal(exc) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.usable = False
            self.pool.failed()
            raise SmtpTemporary(self.pool.reason(exc)) from None
        self.pool.succeeded()
        return True


class SmtpPool:
    """Up to `size` reused connections; a shared pause after temporary failures."""

    def __init__(self, settings: AutoreplySettings, size: int, *, first_delay: float = 1.0,
                 max_delay: float = 300.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.size = size
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.monotonic = monotonic
        self._sem = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []
        self._failures = 0
        self._resume_at = 0.0
        self.connections_opened = 0

    # pause and backoff ----------------------------------------------------------------------------------------

    def delay_left(self) -> float:
        return max(0.0, self._resume_at - self.monotonic())

    def failed(self) -> float:
        """Count a temporary failure and pause the pool; the pause in seconds."""
        self._failures += 1
        delay: float = min(self.max_delay, self.first_delay * 2.0 ** (self._failures - 1))
        self._resume_at = max(self._resume_at, self.monotonic() + delay)
        return delay

    def succeeded(self) -> None:
        self._failures = 0

    # connections --------------------------------------------------------------------------------------------

    async def connect(self) -> aiosmtplib.SMTP:
        from continuity.net.smtp import open_smtp

        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password is not None else None
        smtp = await open_smtp(s.smtp_host, s.smtp_port_number, s.smtp_security, s.smtp_username, password,
                               s.verify_tls, s.timeout.total_seconds())
        self.connections_opened += 1
        return smtp

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lease]:
        """A connected client for one answer; raises SmtpTemporary when none can be had."""
        import aiosmtplib

        async with self._sem:
            smtp = self._idle.pop() if self._idle else None
            reused = smtp is not None
            if smtp is None or not smtp.is_connected:
                try:
                    smtp = await self.connect()
                except aiosmtplib.SMTPResponseException as exc:
                    self.failed()
                    raise SmtpTemporary(self.reason(exc)) from None
                except (aiosmtplib.SMTPException, OSError) as exc:
                    self.failed()
                    raise SmtpTemporary(self.reason(exc)) from None
                reused = False
            lease = Lease(self, smtp, reused)
            try:
                yield lease
            finally:
                if lease.usable and lease.smtp.is_connected:
                    self._idle.append(lease.smtp)
                else:
                    lease.smtp.close()

    def refusal(self, exc: aiosmtplib.SMTPResponseException) -> Exception:
        """4xx: temporary (and the pool pauses); 5xx: permanent."""
        text = self.reason(exc)
        if 400 <= exc.code < 500:
            self.failed()
            return SmtpTemporary(text)
        return SmtpPermanent(text)

    def reason(self, exc: BaseException) -> str:
        """A short reason, with the SMTP code when there is one and never a password."""
        from continuity.net.smtp import smtp_reason

        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password is not None else None
        return scrub(smtp_reason(exc, s.timeout.total_seconds(), password), *s.secrets())

    async def aclose(self) -> None:
        """QUIT every idle connection."""
        from continuity.net.smtp import close_smtp

        idle, self._idle = self._idle, []
        await asyncio.gather(*(close_smtp(smtp) for smtp in idle), return_exceptions=True)
