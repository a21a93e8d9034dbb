"""Reading a mailbox without changing it: EXAMINE (read-only), UID SEARCH, UID FETCH of BODY.PEEK[], IDLE.

Blocking stdlib imaplib, run in the responder's own worker thread. aioimaplib would give asyncio and IDLE,
but it is GPL-3.0-only, which this MIT-licensed project cannot take on as a dependency; the probes already
drive imaplib this way (continuity.probes.imap.ImapSession, reused here for connect, login and select).

Nothing here can change the customers' mail: the mailbox is opened with EXAMINE, so the server refuses any
flag change, and bodies are fetched with BODY.PEEK[], which never sets \\Seen. No STORE, MOVE, COPY,
EXPUNGE or DELETE command exists in this module.

IDLE (RFC 2177), which imaplib 3.11 lacks, is written on imaplib's public send()/readline(): the server is
told IDLE, the socket is watched in short slices so a stop request ends it at once, and it is ended with
DONE after at most `seconds` so the caller can look at the ledger again.
"""

from __future__ import annotations

import imaplib
import io
import itertools
import re
import select
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from continuity.net.imap import ImapFailure, ImapSession, mailbox_name
from continuity.sinks.autoreply import AutoreplySettings

# Cap on the bytes of one message fetched (a partial BODY.PEEK[]<0.N>): enough for headers and text; a huge
# attachment is never downloaded whole.
MAX_FETCH = 2 * 1024 * 1024
_UID = re.compile(rb"\bUID (\d+)")
_DATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_EXISTS = re.compile(rb"^\* \d+ (EXISTS|RECENT)\b", re.IGNORECASE)
_tags = itertools.count(1)


@dataclass(frozen=True)
class Fetched:
    uid: int
    raw: bytes


def uid_set(uids: Iterable[int]) -> str:
    """`1:3,7,9:12` for [1, 2, 3, 7, 9, 10, 11, 12]."""
    out: list[str] = []
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(out)


def internaldate(text: bytes) -> datetime | None:
    try:
        return datetime.strptime(text.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
    except (UnicodeDecodeError, ValueError):
        return None


def _buffered(client: imaplib.IMAP4) -> bool:
    """Whether imaplib's reader already holds a line the socket will not signal again: Dovecot sends
    `+ idling` and `* N EXISTS` in one segment when mail came in since the last command, and `readline`
    buffered both. Peeks without blocking (a non-blocking read that finds nothing returns nothing)."""
    reader = client.file
    if not isinstance(reader, io.BufferedReader):  # makefile('rb') gives one; anything else: rely on select
        return False
    sock = client.sock
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return bool(reader.peek(1))
    except OSError:  # EAGAIN on TLS (SSLWantReadError): nothing buffered, nothing to read yet
        return False
    finally:
        sock.settimeout(timeout)


class MailboxReader:
    """One read-only IMAP connection to the mailbox. Not thread-safe: one worker thread uses it."""

    def __init__(self, settings: AutoreplySettings) -> None:
        self.settings = settings
        self.session: ImapSession | None = None
        self.uidvalidity = 0
        self.can_idle = False

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.client is not None

    def _client(self, extra: float = 0.0) -> imaplib.IMAP4:
        """The client with a fresh deadline of one timeout (plus `extra`) for the next exchange."""
        session = self.session
        if session is None or session.client is None:
            raise ImapFailure("not connected")
        session.deadline = time.monotonic() + self.settings.timeout.total_seconds() + extra
        session.client.sock.settimeout(self.settings.timeout.total_seconds() + extra)
        return session.client

    def connect(self) -> None:
        """Connect, log in, EXAMINE the mailbox and learn its UIDVALIDITY and whether IDLE is offered."""
        s = self.settings
        self.close()
        session = ImapSession(s.imap_host, s.imap_port_number, s.imap_security, s.verify_tls,
                              time.monotonic() + s.timeout.total_seconds())
        self.session = session
        try:
            session.open()
            session.login(s.imap_login, s.imap_password.get_secret_value())
            session.select(s.mailbox, readonly=True)
            client = self._client()
            _, data = client.response("UIDVALIDITY")
            value = data[0] if data and data[0] else None
            if value is None:
                typ, status = client.status(mailbox_name(s.mailbox), "(UIDVALIDITY)")
                found = re.search(rb"UIDVALIDITY (\d+)", status[0] if typ == "OK" and status and
                                  isinstance(status[0], bytes) else b"")
                value = found.group(1) if found else b"0"
            self.uidvalidity = int(value)
            self.can_idle = s.idle and "IDLE" in session.capabilities()
        except BaseException:
            self.close()
            raise

    def search(self, after_uid: int, since: datetime) -> list[int]:
        """UIDs above `after_uid` of messages that arrived on or after since's day (the server's SINCE has
        day granularity; the exact time is checked on INTERNALDATE)."""
        client = self._client()
        day = since.strftime("%d-%b-%Y")
        typ, data = client.uid("SEARCH", f"UID {after_uid + 1}:*", f"SINCE {day}")
        if typ != "OK":
            raise ImapFailure(f"SEARCH refused: {data!r:.120}")
        found = b" ".join(d for d in data if isinstance(d, bytes)).split()
        # `UID n:*` always matches the newest message, even one below n.
        return sorted(u for u in (int(x) for x in found if x.isdigit()) if u > after_uid)

    def dates(self, uids: list[int]) -> dict[int, datetime]:
        """INTERNALDATE (when the server received it) of each message."""
        if not uids:
            return {}
        typ, data = self._client().uid("FETCH", uid_set(uids), "(UID INTERNALDATE)")
        if typ != "OK":
            raise ImapFailure(f"FETCH refused: {data!r:.120}")
        out: dict[int, datetime] = {}
        for item in data:
            text = item[0] if isinstance(item, tuple) else item
            if not isinstance(text, bytes):
                continue
            uid, date = _UID.search(text), _DATE.search(text)
            when = internaldate(date.group(1)) if date else None
            if uid and when is not None:
                out[int(uid.group(1))] = when
        return out

    def bodies(self, uids: list[int]) -> list[Fetched]:
        """The raw messages (at most MAX_FETCH bytes each), fetched with BODY.PEEK so nothing is marked read."""
        if not uids:
            return []
        typ, data = self._client(extra=30.0).uid("FETCH", uid_set(uids), f"(UID BODY.PEEK[]<0.{MAX_FETCH}>)")
        if typ != "OK":
            raise ImapFailure(f"FETCH refused: {data!r:.120}")
        out: list[Fetched] = []
        for i, item in enumerate(data):
            if not isinstance(item, tuple) or len(item) < 2:
                continue
            meta = item[0]
            # The UID may come after the literal ("BODY[]<0> {n} … UID 7)"): look in the next piece too.
            tail = data[i + 1] if i + 1 < len(data) and isinstance(data[i + 1], bytes) else b""
            uid = _UID.search(meta) or _UID.search(tail if isinstance(tail, bytes) else b"")
            if uid and isinstance(item[1], bytes):
                out.append(Fetched(int(uid.group(1)), item[1]))
        return out

    def noop(self) -> None:
        self._client().noop()

    def idle(self, seconds: float, stop: threading.Event) -> bool:
        """Wait in IDLE up to `seconds` (less if `stop` is set); True when the server announced new mail."""
        client = self._client(extra=seconds)
        tag = f"idle{next(_tags)}".encode()
        client.send(tag + b" IDLE\r\n")
        changed = False
        line = client.readline()
        while line.startswith(b"* "):
            changed = changed or bool(_EXISTS.match(line))
            line = client.readline()
        if not line.startswith(b"+"):
            raise ImapFailure(f"IDLE refused: {line[:120]!r}")
        sock = client.sock
        end = time.monotonic() + seconds
        while not changed and not stop.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            pending = getattr(sock, "pending", None)
            ready = (_buffered(client) or bool(pending and pending())
                     or bool(select.select([sock], [], [], min(0.2, left))[0]))
            if not ready:
                continue
            line = client.readline()
            if not line or line.startswith(b"* BYE"):
                raise imaplib.IMAP4.abort("connection closed by the server")
            changed = bool(_EXISTS.match(line))
        client.send(b"DONE\r\n")
        while True:
            line = client.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed by the server")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise ImapFailure(f"IDLE ended with {line[:120]!r}")
                return changed
            changed = changed or bool(_EXISTS.match(line))

    def close(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.deadline = time.monotonic() + 2.0
            session.close()
