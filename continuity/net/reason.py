"""Short reasons for network failures, worded for a support lead reading a health table, not a programmer."""

from __future__ import annotations

import errno
import socket
import ssl


def seconds(value: float) -> str:
    """`5s`, `0.5s`: how a timeout reads in a reason."""
    return f"{value:g}s"


def network_reason(exc: BaseException, timeout: float) -> str:
    """One phrase for why a connection failed: refused, timed out, unknown host, reset, unreachable."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {seconds(timeout)}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, socket.gaierror):
        return "host not found"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, ConnectionAbortedError | BrokenPipeError):
        return "connection closed by the server"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "network unreachable" if exc.errno == errno.ENETUNREACH else "host unreachable"
        # Wrapped errors (aiosmtplib) carry the socket error as their cause.
        if exc.__cause__ is not None and exc.__cause__ is not exc:
            return network_reason(exc.__cause__, timeout)
        return f"connection failed ({exc.strerror or type(exc).__name__})"
    return f"connection failed ({type(exc).__name__})"


def scrub(text: str, *secrets: str | None, limit: int = 160) -> str:
    """Server text for a reason: one line, bounded, and never carrying a secret the probe sent."""
    text = " ".join(str(text).split())
    for secret in secrets:
        if not secret or secret not in text:
            continue
        if len(secret) < 4:
            # Masking every "p" of a text would leave nothing readable: withhold it instead.
            return "(server text withheld: it contains the password)"
        text = text.replace(secret, "**********")
    return text if len(text) <= limit else text[: limit - 1] + "…"
