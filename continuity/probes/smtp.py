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
from continuity.probes.base import Probe, ProbeResult, ProbeSettings
from continuity.probes.netreason import network_reason, scrub, seconds

if TYPE_CHECKING:
    import aiosmtplib

Security = Literal["none", "starttls", "tls"]


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
