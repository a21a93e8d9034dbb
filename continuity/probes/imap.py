"""Can the team read its mail? Connect, LOGIN, open the mailbox read-only, LOGOUT (through continuity.net.imap)."""

from __future__ import annotations

import asyncio
import imaplib
import time
from typing import Literal

from pydantic import Field

from continuity.config.envrefs import Secret
from continuity.net.imap import ImapFailure, ImapSession, Security, examine, imap_reason
from continuity.probes.base import Probe, ProbeResult, ProbeSettings
from continuity.threads import in_thread


class ImapSettings(ProbeSettings):
    """Where the IMAP server is, the mailbox staff read, and the login to read it with."""

    type: Literal["imap"] = "imap"
    host: str = Field(min_length=1)
    port: int = Field(default=143, ge=1, le=65535)
    security: Security = "none"
    username: str = Field(min_length=1)
    password: Secret
    mailbox: str = Field(default="INBOX", min_length=1)
    verify_tls: bool = True


class ImapProbe(Probe):
    """Logs in to the staff mailbox and opens it read-only: proves the store and the auth backend work."""

    type_name = "imap"
    Settings = ImapSettings
    description = "the IMAP server accepts the login and opens the mailbox (read-only)"

    settings: ImapSettings

    def _run(self, deadline: float) -> None:
        s = self.settings
        examine(ImapSession(s.host, s.port, s.security, s.verify_tls, deadline), s.username,
                s.password.get_secret_value(), s.mailbox)

    async def check(self) -> ProbeResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                await in_thread(self._run, time.monotonic() + self.timeout)
        except (ImapFailure, imaplib.IMAP4.error, OSError) as exc:
            password = self.settings.password.get_secret_value()
            return self.result("down", started, imap_reason(exc, self.timeout, password))
        return self.result("up", started)
