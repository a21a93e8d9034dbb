"""Is the mail server taking mail? Greeting, EHLO, optional STARTTLS and login, NOOP, QUIT.

A 4xx or 5xx greeting (a server that is up but refusing work) is as much an outage as a refused connection,
so both are `down`. The password only ever goes to the server: reasons are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from continuity.config.envrefs import Secret
from continuity.net.reason import seconds
from continuity.net.smtp import Security, close_smtp, open_smtp, smtp_reason
from continuity.probes.base import Probe, ProbeResult, ProbeSettings

if TYPE_CHECKING:
    pass

class SmtpSettings(ProbeSettings):
    """Where the SMTP server is and, optionally, how to log in (proves the auth backend works too)."""

    type: Literal["smtp"] = "smtp"
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    security: Security = "none"
    username: str | None = None
    password: Secret | None = None
    verify_tls: bool = True

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        return self


class SmtpProbe(Probe):
    """Connects to an SMTP server and walks it through EHLO (STARTTLS, AUTH), NOOP and QUIT."""

    type_name = "smtp"
    Settings = SmtpSettings
    description = "the mail server greets, accepts EHLO (and a login when configured) and answers NOOP"

    settings: SmtpSettings

    async def check(self) -> ProbeResult:
        import aiosmtplib

        s = self.settings
        password = s.password.get_secret_value() if s.password is not None else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                smtp = await open_smtp(s.host, s.port, s.security, s.username, password, s.verify_tls, self.timeout)
                try:
                    await smtp.noop()
                finally:
                    await close_smtp(smtp)
        except TimeoutError:
            return self.result("down", started, f"timed out after {seconds(self.timeout)}")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return self.result("down", started, smtp_reason(exc, self.timeout, password))
        return self.result("up", started)
