"""An IMAP session for the imap probe and the auto-responder: the stdlib `imaplib` in a worker thread, every
socket operation bounded by one deadline so the thread ends when the caller's time is up (no maintained
asyncio IMAP client exists), and a short reason for each way it fails."""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import ssl
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from continuity.net.reason import network_reason, scrub, seconds

Security = Literal["none", "starttls", "tls"]

# Dovecot appends timings to its answers ("... (0.001 + 0.000 secs)."); noise in a health table.
_TIMINGS = re.compile(r"\s*\([\d.]+(?: \+ [\d.]+)* secs\)\.?$")
_RESP_CODE = re.compile(r"^\[([A-Z-]+)")
T = TypeVar("T")


class ImapFailure(Exception):
    """The server answered, but not as a working mailbox would; the message is the probe's reason."""


def mailbox_name(name: str) -> str:
    """A mailbox name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 5.1.3), quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + raw.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    encoded = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{encoded}"'


def imap_text(data: object) -> str:
    """The human text of an imaplib answer (a list of bytes) or error."""
    if isinstance(data, list):
        data = data[-1] if data else b""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return _TIMINGS.sub("", str(data or "")).strip()


class ImapSession:
    """A blocking IMAP connection (run it in a thread) whose socket operations all end by `deadline`.

    Methods raise ImapFailure with a reason, OSError / TimeoutError for the network, imaplib errors rarely.
    """

    def __init__(self, host: str, port: int, security: Security, verify_tls: bool, deadline: float) -> None:
        self.host, self.port, self.security, self.verify_tls = host, port, security, verify_tls
        self.deadline = deadline  # time.monotonic() value
        self.client: imaplib.IMAP4 | None = None
        # imaplib is not thread-safe, and a step whose coroutine was cancelled still runs in its thread.
        self.lock = threading.Lock()

    def exclusive(self, step: Callable[[], T]) -> T:
        """Run one step (in a worker thread) while no other step uses the connection."""
        with self.lock:
            return step()

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left

    def _arm(self) -> imaplib.IMAP4:
        """The client with its socket timeout cut to what is left of the deadline."""
        assert self.client is not None, "open() first"
        self.client.sock.settimeout(self._remaining())
        return self.client

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if not self.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def open(self) -> None:
        """Connect, read the greeting and, for `starttls`, upgrade before anything secret is sent."""
        try:
            if self.security == "tls":
                self.client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self._tls_context(),
                                                timeout=self._remaining())
            else:
                self.client = imaplib.IMAP4(self.host, self.port, timeout=self._remaining())
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise ImapFailure(f"IMAP greeting refused: {scrub(imap_text(exc.args[0] if exc.args else ''))}") from None
        if self.security == "starttls":
            client = self._arm()
            if "STARTTLS" not in client.capabilities:
                raise ImapFailure("the server does not offer STARTTLS")
            try:
                client.starttls(ssl_context=self._tls_context())
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error:
                raise ImapFailure("STARTTLS refused by the server") from None

    def login(self, username: str, password: str) -> None:
        client = self._arm()
        try:
            client.login(username, password)
        except UnicodeEncodeError:
            raise ImapFailure("IMAP LOGIN can only send ASCII usernames and passwords") from None
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            # The server's text is not passed on (it could echo what was sent); a response code such as
            # PRIVACYREQUIRED says what to change, so that is kept.
            code = _RESP_CODE.match(imap_text(exc.args[0] if exc.args else ""))
            detail = f" ({code.group(1)})" if code and code.group(1) != "AUTHENTICATIONFAILED" else ""
            raise ImapFailure(f"login refused{detail}") from None

    def select(self, mailbox: str, readonly: bool) -> int:
        """Open the mailbox; the number of messages in it."""
        typ, data = self._arm().select(mailbox_name(mailbox), readonly=readonly)
        if typ != "OK":
            raise ImapFailure(f'cannot open mailbox "{mailbox}": {scrub(imap_text(data))}')
        try:
            return int(imap_text(data) or 0)
        except ValueError:
            return 0

    def capabilities(self) -> set[str]:
        """Capabilities as the server states them now (after login they often grow)."""
        typ, data = self._arm().capability()
        if typ != "OK":
            return set()
        return {c.upper() for c in imap_text(data).split()}

    def noop(self) -> None:
        """Lets the server tell about mail that arrived since the last command."""
        self._arm().noop()

    def uid_search(self, *criteria: str) -> list[str]:
        typ, data = self._arm().uid("SEARCH", *criteria)
        if typ != "OK":
            raise ImapFailure(f"SEARCH refused: {scrub(imap_text(data))}")
        return imap_text(data).split()

    def uid_flag_deleted(self, uid: str) -> None:
        typ, data = self._arm().uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
        if typ != "OK":
            raise ImapFailure(f"cannot flag the message deleted: {scrub(imap_text(data))}")

    def uid_expunge(self, uid: str) -> None:
        """Expunge exactly this message (UIDPLUS, RFC 4315)."""
        typ, data = self._arm().uid("EXPUNGE", uid)
        if typ != "OK":
            raise ImapFailure(f"UID EXPUNGE refused: {scrub(imap_text(data))}")

    def expunge(self) -> None:
        """Expunge every \\Deleted message of the mailbox: only call when they are all ours."""
        typ, data = self._arm().expunge()
        if typ != "OK":
            raise ImapFailure(f"EXPUNGE refused: {scrub(imap_text(data))}")

    def close(self) -> None:
        """LOGOUT if there is time for it, then drop the connection; never raises."""
        # A step still running past the deadline is cut short by shutting the socket under it.
        locked = self.lock.acquire(timeout=max(0.0, self.deadline - time.monotonic()) + 1.0)
        try:
            client, self.client = self.client, None
            if client is None:
                return
            try:
                if locked and client.state != "LOGOUT":
                    client.sock.settimeout(max(0.05, min(1.0, self.deadline - time.monotonic())))
                    client.logout()
                    return
            except (imaplib.IMAP4.error, OSError):
                pass
            with contextlib.suppress(OSError):
                client.shutdown()
        finally:
            if locked:
                self.lock.release()


def imap_reason(exc: BaseException, timeout: float, password: str | None) -> str:
    """A short reason for a failed IMAP exchange."""
    if isinstance(exc, ImapFailure):
        return scrub(str(exc), password)
    if isinstance(exc, imaplib.IMAP4.abort):
        text = imap_text(exc.args[0] if exc.args else "")
        if "timed out" in text:
            return f"timed out after {seconds(timeout)}"
        if "EOF" in text:
            return "connection closed by the server"
        return f"connection lost ({scrub(text, password)})"
    if isinstance(exc, imaplib.IMAP4.error):
        return f"IMAP error: {scrub(imap_text(exc.args[0] if exc.args else ''), password)}"
    return network_reason(exc, timeout)


def examine(session: ImapSession, username: str, password: str, mailbox: str) -> None:
    """Connect, log in and open the mailbox read-only (EXAMINE), then log out: the store and the auth backend
    work, and no flag changes. Blocking: run it in a thread."""
    try:
        session.open()
        session.login(username, password)
        session.select(mailbox, readonly=True)
    finally:
        session.close()
