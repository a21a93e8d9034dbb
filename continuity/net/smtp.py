"""The SMTP client every sender shares: a connected client, one transaction in phases, and a failure's reason.

A transaction in phases, so a caller knows whether a failure can have delivered the message.

SMTP has one point of no return: the final dot of DATA. Before the server has it, nothing was delivered and a
retry is safe; after it, a reply that never comes (a slow content filter, a greylisting relay, a dropped line, a
crash) leaves the message possibly delivered, and a retry would be a second copy. `send_phased` sends the whole
envelope and body but the final dot, calls `before_end` (the caller records, durably, that it is about to end
the message), sends the dot and reads the reply. Errors say which side of that point they happened on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal

from continuity.net.reason import network_reason, scrub, seconds

if TYPE_CHECKING:
    import aiosmtplib

Security = Literal["none", "starttls", "tls"]

_PERIOD = re.compile(rb"(?m)^\.")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class AfterEnd(Exception):
    """The server had the final dot but did not confirm it (timeout, dropped connection): maybe delivered."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def data_bytes(flat: bytes) -> bytes:
    """The message as it travels inside DATA, without the final dot: CRLF line ends, leading dots doubled."""
    body = _LINE_ENDS.sub(b"\r\n", flat)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return _PERIOD.sub(b"..", body)


async def send_phased(smtp: aiosmtplib.SMTP, message: EmailMessage | bytes, sender: str, recipient: str,
                      before_end: Callable[[], Awaitable[None] | None], timeout: float) -> None:
    """Deliver `message` (built, or already flattened to bytes) to one recipient over a connected client.

    Raises aiosmtplib's errors for everything before the final dot (nothing delivered) and for a 4xx/5xx reply
    to it (the server refused the message: nothing delivered either), and `AfterEnd` when the reply to the
    final dot never came.
    """
    import aiosmtplib
    from aiosmtplib.email import flatten_message

    options: list[str] = []
    utf8 = not (sender + recipient).isascii()
    if utf8:
        if not smtp.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("an address has non-ASCII characters and the server has no SMTPUTF8")
        options.append("SMTPUTF8")
    eight_bit = smtp.supports_extension("8BITMIME")
    if isinstance(message, EmailMessage):
        flat = flatten_message(message, utf8=utf8, cte_type="8bit" if eight_bit else "7bit")
    else:
        flat = message
    if eight_bit and not flat.isascii():
        options.append("BODY=8BITMIME")
    body = data_bytes(flat)
    if smtp.supports_extension("size"):
        options.insert(0, f"SIZE={len(body) + 3}")
    encoding = "utf-8" if utf8 else "ascii"
    try:
        await smtp.mail(sender, options=options, encoding=encoding, timeout=timeout)
        await smtp.rcpt(recipient, encoding=encoding, timeout=timeout)
        start = await smtp.execute_command(b"DATA", timeout=timeout)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
    except aiosmtplib.SMTPResponseException:
        await _reset(smtp, timeout)
        raise
    protocol = smtp.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("the connection closed before the message was sent")
    protocol.write(body)
    marked = before_end()
    if marked is not None:
        await marked
    try:
        protocol.write(b".\r\n")
        reply = await protocol.read_response(timeout=timeout)
    except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        smtp.close()
        raise AfterEnd(exc) from exc
    if reply.code != 250:
        # A refusal after the dot is final for this copy: the server did not take it.
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


async def _reset(smtp: aiosmtplib.SMTP, timeout: float) -> None:
    """RSET after a refusal, so the connection can carry the next recipient; a failure here is not news."""
    import aiosmtplib

    try:
        if smtp.is_connected:
            await smtp.rset(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError):
        pass


async def open_smtp(
    host: str,
    port: int,
    security: Security,
    username: str | None,
    password: str | None,
    verify_tls: bool,
    timeout: float,
) -> aiosmtplib.SMTP:
    """A connected, greeted (EHLO), optionally encrypted and logged-in client; raises aiosmtplib errors."""
    import aiosmtplib

    # start_tls=False: aiosmtplib would otherwise upgrade on its own whenever the server offers STARTTLS,
    # and a probe must test exactly what was configured.
    smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=security == "tls", start_tls=False,
                           validate_certs=verify_tls, timeout=timeout)
    await smtp.connect()
    try:
        await smtp.ehlo()
        if security == "starttls":
            await smtp.starttls()
            await smtp.ehlo()
        if username is not None and password is not None:
            await smtp.login(username, password)
    except BaseException:
        smtp.close()
        # Let the loop finish closing the socket (a failed STARTTLS leaves it mid-close): a caller whose
        # asyncio.run ends right after would otherwise drop it half-closed.
        with contextlib.suppress(BaseException):
            await asyncio.sleep(0)
        raise
    return smtp


async def close_smtp(smtp: aiosmtplib.SMTP) -> None:
    """QUIT politely; a server that drops the line at QUIT has still done its job."""
    import aiosmtplib

    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()
        await asyncio.sleep(0)  # the socket's close completes on the loop, before a caller's loop may end


def smtp_reason(exc: BaseException, timeout: float, password: str | None) -> str:
    """A short reason for an aiosmtplib (or socket) failure: the SMTP code when there is one."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return f"timed out after {seconds(timeout)}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # Before the connection check: a 421/554 greeting is a connect error that carries a code.
        answer = f"SMTP {exc.code} {scrub(exc.message, password)}".rstrip()
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return f"login refused ({answer})"
        return answer
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return "connection closed by the server"
    if isinstance(exc, aiosmtplib.SMTPConnectError | OSError):
        return network_reason(exc, timeout)
    if isinstance(exc, aiosmtplib.SMTPException):
        # Raised by the client about the server's abilities (no STARTTLS, no AUTH): a setting to change.
        return scrub(exc.message or str(exc), password)
    return f"failed ({type(exc).__name__})"
