"""Email through the team's own SMTP server, one message per recipient.

One message per recipient so each carries a Message-ID derived from the action key and that recipient, and
each recipient's progress is recorded in the store's send marks: just before the final dot of DATA (the point
of no return) and once the server confirmed. A retry or a restart skips recipients already sent; one whose
final dot got no reply (a slow content filter, a dropped line, a crash) is `uncertain` for a person to settle,
never a second copy (unless `resend_unconfirmed` says the server deduplicates by Message-ID).
"""

from __future__ import annotations

import hashlib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import partial
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from continuity.config.envrefs import Secret
from continuity.mailpolicy import MAIL
from continuity.net.reason import network_reason
from continuity.sinks.base import Action, Outcome, Sink, SinkSettings

if TYPE_CHECKING:
    import aiosmtplib

LOCALE_SEPARATOR = "\n\n" + "-" * 40 + "\n\n"


class EmailSettings(SinkSettings):
    """SMTP server, login and addresses."""

    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    verify_tls: bool = True  # off only for a private server with a self-signed certificate
    username: str | None = None
    password: Secret | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    timeout: float = Field(default=30, gt=0)
    # A message whose final dot got no reply may have been delivered. Off: it is reported uncertain for a person
    # to settle. On: sent again, for a server the team knows drops a second copy by its Message-ID.
    resend_unconfirmed: bool = False

    @field_validator("sender")
    @classmethod
    def _sender_is_address(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("to")
    @classmethod
    def _to_are_addresses(cls, value: list[str]) -> list[str]:
        return [_check_address(v) for v in value]

    @model_validator(mode="after")
    def _login_pair(self) -> EmailSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        return self


def _check_address(value: str) -> str:
    # Newlines would let a value smuggle extra headers into the message.
    if "\n" in value or "\r" in value or "@" not in parseaddr(value)[1]:
        raise ValueError(f"{value!r} is not an email address")
    return value


def envelope_address(value: str) -> str:
    """The bare address of `Name <a@b>` (SMTP wants that in MAIL FROM / RCPT TO)."""
    return parseaddr(value)[1]


def message_id(action_key: str, recipient: str) -> str:
    """Deterministic per action and recipient, so a resend can be recognised as the same message."""
    digest = hashlib.sha256((action_key + recipient).encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@continuity>"


def joined_body(action: Action) -> str:
    """Every locale's body, primary first, separated by a line of dashes."""
    return LOCALE_SEPARATOR.join(r.body.strip("\n") for r in action.messages) + "\n"


class EmailSink(Sink):
    """Sends each action as a plain-text email to every address in `to`."""

    type_name = "email"
    reads_earlier = False  # its send marks, not earlier rows, say what went out (see Runner._reads_earlier)
    Settings = EmailSettings
    actions = frozenset({"notify", "notice", "post"})
    # Re-running an action is safe: each recipient's progress is in the store's send marks (sent: skipped;
    # interrupted at the final dot: reported uncertain, never sent again), so a crash loses nothing and
    # repeats nothing.
    idempotent = True
    reversible = False
    description = "a plain-text email through your SMTP server, one message per recipient"

    settings: EmailSettings

    def build(self, action: Action, recipient: str) -> EmailMessage:
        msg = EmailMessage(policy=MAIL)
        msg["From"] = self.settings.sender
        msg["To"] = recipient
        msg["Subject"] = action.primary.subject
        msg["Date"] = format_datetime(self.context.clock.now())
        msg["Message-ID"] = message_id(action.key, envelope_address(recipient))
        # Tells auto-responders and out-of-office replies to stay quiet (RFC 3834; the second for Exchange).
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(joined_body(action))
        msg["Content-Language"] = action.primary.locale  # after set_content, which drops Content-* headers
        return msg

    async def apply(self, action: Action) -> Outcome:
        import aiosmtplib

        from continuity.net.smtp import AfterEnd, send_phased

        if not action.messages:
            return Outcome.fail("the step rendered no message to send")
        marks = self.context.marks
        s = self.settings
        states = {r: marks.state(action.key, envelope_address(r)) for r in s.to}
        unsure = [r for r, st in states.items() if st == "ending"]
        pending = [r for r, st in states.items() if st is None]
        if not pending:
            return self._unsure(unsure, []) if unsure else Outcome.success("already sent to every recipient")
        sent = 0
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
            validate_certs=s.verify_tls,
            timeout=s.timeout,
        )
        late: list[str] = []  # sent the final dot, no reply: on this call
        try:
            for recipient in pending:
                address = envelope_address(recipient)
                if not smtp.is_connected:  # one connection for all recipients, again after a lost reply
                    await smtp.connect()
                try:
                    await send_phased(smtp, self.build(action, recipient), envelope_address(s.sender), address,
                                      partial(marks.ending, action.key, address), s.timeout)
                except AfterEnd:
                    if s.resend_unconfirmed:  # the team's server drops a second copy by Message-ID
                        marks.forget(action.key, address)
                        raise
                    late.append(recipient)
                    continue
                except aiosmtplib.SMTPResponseException:
                    if marks.state(action.key, address) == "ending":  # refused after the dot: not delivered
                        marks.forget(action.key, address)
                    raise
                # Anything else after the mark (cancelled by the runner's timeout, a crash) leaves it `ending`:
                # the next run reports the recipient uncertain instead of sending a second copy.
                marks.sent(action.key, address)
                sent += 1
            if smtp.is_connected:
                await _quit(smtp)
        except AfterEnd as exc:
            return Outcome.retry(f"{self._where(sent, len(pending))}the mail server took the message but did not "
                                 f"confirm it within {s.timeout:g}s ({exc}); sending again (resend_unconfirmed)")
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            tls = _tls_error(exc)
            if tls is not None:  # a certificate is fixed by a person, not by retrying
                return Outcome.fail(f"{self._where(sent, len(pending))}TLS with the mail server at {s.host}:{s.port} "
                                    f"failed: {network_reason(tls, s.timeout)} (trust its certificate, or set "
                                    "verify_tls: false for a private server)")
            if isinstance(exc, aiosmtplib.SMTPException):
                return self._judge(exc, sent, len(pending))
            return Outcome.retry(f"{self._where(sent, len(pending))}cannot reach the mail server at "
                                 f"{s.host}:{s.port}: {network_reason(exc, s.timeout)}")
        if unsure or late:
            return self._unsure(unsure, late)
        return Outcome.success(f"sent to {sent} recipient(s)")

    def _unsure(self, earlier: list[str], now: list[str]) -> Outcome:
        """Recipients whose message reached the final dot without a confirmation: maybe delivered, so a
        person settles them; never sent again on our own."""
        who = ", ".join(envelope_address(r) for r in [*earlier, *now])
        why = (f"did not confirm within {self.settings.timeout:g}s" if now
               else "was interrupted before it confirmed")
        return Outcome.unsure(f"the mail server took the message for {who} but {why}: it may have been "
                              "delivered; check the mailbox, then `continuity settle ID sent` or "
                              "`continuity settle ID resend`")

    def _where(self, sent: int, total: int) -> str:
        return f"sent to {sent} of {total} recipient(s), then: " if sent else ""

    def _judge(self, exc: Exception, sent: int, total: int) -> Outcome:
        """SMTP 4xx, timeouts and dropped connections are temporary; 5xx and refused logins are not."""
        import aiosmtplib

        where = self._where(sent, total)
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
            exc = exc.recipients[0]
        if isinstance(exc, aiosmtplib.SMTPTimeoutError):
            return Outcome.retry(f"{where}the mail server did not answer within {self.settings.timeout:g}s")
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            # Before the connection check: a greeting of 421 or 554 is a connect error with a code.
            answer = f"{where}the mail server answered {exc.code} {self._scrub(exc.message)}".rstrip()
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                answer += " (login refused)"
            return Outcome.retry(answer) if 400 <= exc.code < 500 else Outcome.fail(answer)
        if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
            s = self.settings
            cause = exc.__cause__
            why = f": {network_reason(cause, s.timeout)}" if isinstance(cause, OSError) else ""
            return Outcome.retry(f"{where}cannot reach the mail server at {s.host}:{s.port}{why}")
        # What is left is raised by the client itself about the server's abilities (no STARTTLS, no AUTH,
        # no SMTPUTF8): a setting to change, not something a retry fixes.
        message = self._scrub(getattr(exc, "message", "") or str(exc))
        return Outcome.fail(f"{where}{message} (check the email sink's security and login settings)")

    def _scrub(self, text: str) -> str:
        # Servers echo parts of what they were sent; make sure the password is never passed on (replaced
        # before the text is cut, so no prefix of it survives at the cut).
        from continuity.net.reason import scrub

        password = self.settings.password.get_secret_value() if self.settings.password is not None else None
        return scrub(text, password, limit=200)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    """QUIT; a server that drops the line at QUIT has still taken every message it confirmed."""
    import aiosmtplib

    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The TLS failure behind an SMTP error (aiosmtplib wraps it as the cause), if that is what it was."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
