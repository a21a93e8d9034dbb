"""The `autoreply` sink: a mailbox whose new customer mail the daemon answers while a situation needs it.

The sink holds no connection and starts nothing. The ledger is the switch: an `autoreply` step that is
done, not undone, for an open situation means the daemon's responder for this mailbox is on (see
continuity.autoreply.responder). apply() only proves the mailbox logs in, so a wrong password fails the
step where the operator sees it instead of silently answering nobody; undo() has nothing to do, because
the responder reads the ledger and stops within one poll interval once the situation closes.
"""

from __future__ import annotations

import asyncio
import imaplib
import time
from datetime import timedelta
from email.utils import parseaddr
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from continuity.config.envrefs import Secret
from continuity.config.models import Duration
from continuity.sinks.base import Action, Outcome, Sink, SinkSettings
from continuity.threads import in_thread

Security = Literal["none", "starttls", "tls"]


def _address(value: str) -> str:
    # Newlines would let a value smuggle headers into the answers.
    if "\n" in value or "\r" in value or "@" not in parseaddr(value)[1]:
        raise ValueError(f"{value!r} is not an email address")
    return parseaddr(value)[1].lower()


class AutoreplySettings(SinkSettings):
    """The mailbox to answer for: where to read it (IMAP), how to send the answers (SMTP), and the rules."""

    address: str = Field(description="the address customers write to; answers come from it")
    own_addresses: list[str] = Field(default_factory=list,
                                     description="every other address of ours (aliases, team mailboxes): "
                                                 "never answered, and accepted in To/Cc as the mailbox")
    require_addressed: bool = True
    period: Duration = timedelta(days=1)
    poll_interval: Duration = timedelta(seconds=30)
    idle: bool = True
    max_smtp_connections: int = Field(default=4, ge=1, le=32)
    from_name: str | None = None
    null_sender: bool = True
    imap_host: str = Field(min_length=1)
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_security: Security = "tls"
    imap_username: str | None = None
    imap_password: Secret
    mailbox: str = Field(default="INBOX", min_length=1)
    smtp_host: str = Field(min_length=1)
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    verify_tls: bool = True
    timeout: Duration = timedelta(seconds=30)

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("own_addresses")
    @classmethod
    def _check_own(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("from_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("from_name must be one line")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AutoreplySettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("smtp_username and smtp_password go together: set both or neither")
        if self.poll_interval < timedelta(seconds=1):
            raise ValueError("poll_interval must be at least 1s")
        if self.period < timedelta(minutes=1):
            raise ValueError("period must be at least 1m")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be longer than 0s")
        return self

    @property
    def imap_port_number(self) -> int:
        return self.imap_port or (993 if self.imap_security == "tls" else 143)

    @property
    def smtp_port_number(self) -> int:
        return self.smtp_port or {"tls": 465, "starttls": 587, "none": 25}[self.smtp_security]

    @property
    def imap_login(self) -> str:
        return self.imap_username or self.address

    @property
    def addresses(self) -> frozenset[str]:
        """Every address of ours: the mailbox and its aliases."""
        return frozenset({self.address, *self.own_addresses})

    def secrets(self) -> list[str]:
        """Secret values, to scrub from anything shown or logged."""
        values = [self.imap_password.get_secret_value()]
        if self.smtp_password is not None:
            values.append(self.smtp_password.get_secret_value())
        return [v for v in values if v]


def check_mailbox(settings: AutoreplySettings) -> None:
    """Log in and open the mailbox read-only (EXAMINE), then log out. Blocking: run it in a thread."""
    from continuity.net.imap import ImapSession, examine

    session = ImapSession(settings.imap_host, settings.imap_port_number, settings.imap_security,
                          settings.verify_tls, time.monotonic() + settings.timeout.total_seconds())
    examine(session, settings.imap_login, settings.imap_password.get_secret_value(), settings.mailbox)


class AutoreplySink(Sink):
    """Switches the daemon's responder for one mailbox on (apply) and off (undo) through the ledger."""

    type_name = "autoreply"
    Settings: ClassVar[type[SinkSettings]] = AutoreplySettings
    actions: ClassVar[frozenset[str]] = frozenset({"autoreply"})
    idempotent = True
    reversible = True
    description = "answers new customer mail to a mailbox (IMAP + SMTP) while the situation is open"

    settings: AutoreplySettings

    async def apply(self, action: Action) -> Outcome:
        from continuity.net.imap import ImapFailure, imap_reason

        s = self.settings
        timeout = s.timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout + 1):
                await in_thread(check_mailbox, s)
        except ImapFailure as exc:
            # A refused login or a missing folder is a setting to fix, not something a retry cures.
            return Outcome.fail(f"mailbox {s.address}: {imap_reason(exc, timeout, s.imap_password.get_secret_value())}")
        except (imaplib.IMAP4.error, OSError) as exc:
            reason = imap_reason(exc, timeout, s.imap_password.get_secret_value())
            return Outcome.retry(f"mailbox {s.address}: cannot reach {s.imap_host}:{s.imap_port_number} ({reason})")
        return Outcome.success(f"responder on for {s.address}: `continuity daemon` answers new mail to it")

    async def undo(self, action: Action) -> Outcome:
        return Outcome.success(f"responder off for {self.settings.address}: the daemon stops answering within "
                               f"{int(self.settings.poll_interval.total_seconds())}s")
