"""TCP connect check: is anything accepting connections on host:port (a PBX, an SMPP gateway, a chat relay)?

Also home of `describe_network_error`, the one place that turns a connection failure into the short reason a
support lead reads ("connection refused"), shared by the probes built on top of TCP.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time

from pydantic import Field, field_validator

from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings

# Short, stable reasons for the errno values a peer typically causes; anything else uses strerror.
_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed by peer",
}


def describe_network_error(exc: BaseException, host: str | None = None) -> str:
    """A short human reason for a failed connection, found anywhere in the exception's chain.

    Client libraries wrap the OS error (httpx: ConnectError → OSError → ConnectionRefusedError), so the chain
    is walked for the most specific cause. The message never includes request headers or bodies.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    fallback = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return f"cannot resolve host {host!r}" if host else "cannot resolve host"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"TLS certificate not accepted: {current.verify_message or current.reason}"
        if isinstance(current, ssl.SSLError):
            return f"TLS error: {current.reason or current}"
        if isinstance(current, OSError):
            if current.errno in _ERRNO_REASONS:
                return _ERRNO_REASONS[current.errno]
            # asyncio reports a failure on every address of a name as one errno-less OSError.
            if current.errno is None and f"[Errno {errno.ECONNREFUSED}]" in str(current):
                return "connection refused"
            if current.strerror and not fallback:
                fallback = current.strerror[:1].lower() + current.strerror[1:]
        if not fallback and str(current):
            fallback = str(current)
        current = current.__cause__ or current.__context__
    text = fallback or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class TcpSettings(ProbeSettings):
    """Where to connect."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip()
        if "://" in value or "/" in value:
            raise ValueError("host is a bare name or address (put the port in `port`, no scheme or path)")
        # [::1] as people write it in URLs is the address ::1
        return value[1:-1] if value.startswith("[") and value.endswith("]") else value


class TcpProbe(Probe):
    """Up when a TCP connection to host:port completes within the timeout; the connection is closed at once."""

    type_name = "tcp"
    Settings = TcpSettings
    description = "a TCP connection to host:port is accepted"

    settings: TcpSettings

    def __init__(self, settings: TcpSettings, context: ProbeContext) -> None:
        super().__init__(settings, context)

    async def check(self) -> ProbeResult:
        host, port = self.settings.host, self.settings.port
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                _reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            return self.result("down", started, f"timed out after {self.timeout:g}s")
        except OSError as exc:
            return self.result("down", started, describe_network_error(exc, host))
        # The latency is the connect time; closing politely is not the peer's cost.
        outcome = self.result("up", started)
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (TimeoutError, OSError):
            pass  # the transport is closed either way; a reset on close says nothing about health
        return outcome
