"""Real mail and SIP servers on loopback for tests: Dovecot (IMAP + LMTP), an aiosmtpd relay into it, SIPp.

Plain classes (start/stop or `with`), no pytest here: the fixtures that share them live in peerfixtures.py,
and anything else that needs a mailbox (auto-responder, campaigns) can build its own on top of these.

- `DovecotServer`: a private Dovecot under a temp dir, IMAP and LMTP on free ports, users in passwd-files
  (`add_user` works while it runs), `deliver()` over LMTP; given `tls_cert`/`tls_key`, also STARTTLS on the
  IMAP port and IMAPS on `imaps_port`.
- `SmtpRelay`: aiosmtpd accepting SMTP and passing each message to Dovecot's LMTP; it can also refuse
  (`mode="refuse"`, e.g. 451 or 550) or accept and drop (`mode="swallow"`), and check an AUTH PLAIN login.
- `SippServer`: SIPp answering OPTIONS with a chosen status line, over UDP or TCP.
- `SilentUdpPort` (bound, never answers, counts what it got) and `closed_udp_port()` (ICMP unreachable).
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
DOVECOT = "/usr/sbin/dovecot"
SIPP = "/usr/bin/sipp"


class PeerMissing(RuntimeError):
    """A server binary the tests need is not installed; the message says which package brings it."""


def require(path: str, package: str) -> str:
    found = path if os.access(path, os.X_OK) else shutil.which(os.path.basename(path))
    if not found:
        raise PeerMissing(f"{path} is not installed: apt-get install {package} (the test command installs it)")
    return found


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port nothing listens on right now (bound, read and released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def closed_udp_port() -> int:
    """A UDP port with no socket: a datagram sent there comes back as ICMP port unreachable."""
    return free_port(socket.SOCK_DGRAM)


def _wait_pid_exit(pid: int, timeout: float) -> bool:
    """Wait for a process we did not start as a child (daemonised) to end; a zombie counts as ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True  # nobody reaps orphans in some containers; a zombie holds no ports
        time.sleep(0.05)
    return False


def _stop_pid(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_pid_exit(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_pid_exit(pid, 2)


def _listening(port: int, proto: Literal["udp", "tcp"]) -> bool:
    """Is something bound to 127.0.0.1:port? Read from /proc, so checking never races the server's bind."""
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/net/{proto}").read_text().splitlines()[1:]:
            cols = line.split()
            # A bound UDP socket shows state 07 (unconnected); a TCP listener 0A.
            if cols[1] == wanted and cols[3] in ("07", "0A"):
                return True
    return False


# --- Dovecot ----------------------------------------------------------------------------------------------

_DOVECOT_CONF = """\
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
{unprivileged}
passdb {{
  driver = passwd-file
  # One file per user: Dovecot checks a passwd-file for changes at most once a second, a new file at once.
  args = scheme=PLAIN {root}/users/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# Repeated failed logins from 127.0.0.1 would otherwise be answered ever later (2, 4, 8, 15 s).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
"""

_DOVECOT_TLS_CONF = """\
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
service imap-login {{
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


@dataclass(frozen=True)
class MailUser:
    address: str
    password: str


class DovecotServer:
    """A private Dovecot: `with DovecotServer() as dc: dc.deliver(dc.user.address, raw)`."""

    def __init__(self, users: dict[str, str] | None = None, tls_cert: Path | None = None,
                 tls_key: Path | None = None) -> None:
        self.users = dict(users or {"support@example.test": "secret"})
        self.host = HOST
        self.imap_port = 0
        self.lmtp_port = 0
        # With a certificate and key (PEM files): STARTTLS on imap_port and implicit TLS on imaps_port.
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.imaps_port = 0
        self.root: Path | None = None
        self.pid: int | None = None

    @property
    def user(self) -> MailUser:
        """The first configured user."""
        address, password = next(iter(self.users.items()))
        return MailUser(address, password)

    def _path(self) -> Path:
        if self.root is None:
            raise RuntimeError("DovecotServer is not running")
        return self.root

    def start(self, timeout: float = 10.0) -> DovecotServer:
        binary = require(DOVECOT, "dovecot-imapd dovecot-lmtpd")
        # Not under pytest's 0700 tmp dirs: Dovecot's mail processes run as the mail user and must reach
        # the maildirs.
        root = Path(tempfile.mkdtemp(prefix="continuity-dovecot-"))
        root.chmod(0o755)
        self.root = root
        for sub in ("base", "state", "mail"):
            (root / sub).mkdir()
        if os.geteuid() == 0:
            # As root Dovecot drops to the Debian mail user (uid 8) for the mailboxes.
            mail = pwd.getpwnam("mail")
            uid, gid, unprivileged = mail.pw_uid, mail.pw_gid, ""
            os.chown(root / "mail", uid, gid)
        else:
            uid, gid = os.getuid(), os.getgid()
            name = pwd.getpwuid(uid).pw_name
            unprivileged = f"default_login_user = {name}\ndefault_internal_user = {name}\n"
        self._write_users()
        self.imap_port, self.lmtp_port = free_port(), free_port()
        (root / "dovecot.conf").write_text(_DOVECOT_CONF.format(
            root=root, host=self.host, uid=uid, gid=gid, unprivileged=unprivileged,
            imap_port=self.imap_port, lmtp_port=self.lmtp_port,
        ) + self._tls_conf())
        out = root / "start.out"
        try:
            # Output to a file, not a pipe: the daemonised master inherits it and would hold a pipe open.
            with out.open("wb") as sink:
                run = subprocess.run([binary, "-c", str(root / "dovecot.conf")], stdout=sink,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout)
            if run.returncode != 0:
                raise RuntimeError(f"dovecot did not start: {out.read_text(errors='replace').strip()}")
            self.pid = self._wait_pid(root / "base" / "master.pid", timeout)
            self._wait_ready(timeout)
        except BaseException:
            self._pid_from_file()
            self.stop()
            raise
        return self

    def _tls_conf(self) -> str:
        """Settings appended after _DOVECOT_CONF when TLS is wanted ("" otherwise): a later setting wins and
        a repeated service section is merged into the first, so the base config stays as it is."""
        if self.tls_cert is None or self.tls_key is None:
            return ""
        self.imaps_port = free_port()
        return _DOVECOT_TLS_CONF.format(cert=self.tls_cert, key=self.tls_key, host=self.host,
                                        imaps_port=self.imaps_port)

    @staticmethod
    def _wait_pid(path: Path, timeout: float) -> int:
        """The master's pid: on a busy machine the daemonised master may write its pid file a moment after
        the starting process has already exited."""
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text().strip())
            if time.monotonic() > end:
                raise RuntimeError(f"dovecot wrote no pid file ({path}) within {timeout:g}s")
            time.sleep(0.02)

    def _pid_from_file(self) -> None:
        if self.pid is None and self.root is not None:
            with contextlib.suppress(OSError, ValueError):
                self.pid = int((self.root / "base" / "master.pid").read_text().strip())

    def _wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        user = self.user
        last: Exception | None = None
        while time.monotonic() < end:
            try:
                with self.imap(user.address, user.password):
                    return
            except (OSError, imaplib.IMAP4.error) as exc:
                last = exc
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not accept an IMAP login within {timeout:g}s ({last}); log:\n{self.log()}")

    def _write_users(self) -> None:
        folder = self._path() / "users"
        folder.mkdir(exist_ok=True)
        for address, password in self.users.items():
            (folder / address).write_text(f"{address}:{{PLAIN}}{password}\n")

    def add_user(self, address: str, password: str = "secret") -> MailUser:
        """A new mailbox, usable at once (isolates one test's mail from another's).

        Give each new user its own address: a changed password may take a second to be seen."""
        if "/" in address or address.startswith("."):
            raise ValueError(f"{address!r} cannot be a file name")
        self.users[address] = password
        self._write_users()
        return MailUser(address, password)

    def deliver(self, recipient: str, message: bytes, sender: str = "customer@example.test") -> None:
        """Put a message into recipient's INBOX the way an MTA would (LMTP)."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=10) as lmtp:
            lmtp.sendmail(sender, [recipient], message)

    @contextlib.contextmanager
    def imap(self, address: str, password: str, mailbox: str | None = "INBOX") -> Iterator[imaplib.IMAP4]:
        """A logged-in IMAP client (mailbox selected read-write unless None), logged out afterwards."""
        client = imaplib.IMAP4(self.host, self.imap_port, timeout=10)
        try:
            client.login(address, password)
            if mailbox is not None:
                typ, data = client.select(mailbox)
                if typ != "OK":
                    raise imaplib.IMAP4.error(f"select {mailbox}: {data!r}")
            yield client
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def messages(self, address: str, password: str, mailbox: str = "INBOX") -> dict[str, tuple[str, str]]:
        """UID → (flags, Subject) of every message in the mailbox, expunged ones excluded."""
        out: dict[str, tuple[str, str]] = {}
        with self.imap(address, password, mailbox) as client:
            typ, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            for item in data:
                if not isinstance(item, tuple):
                    continue
                meta = item[0].decode()
                uid = re.search(r"UID (\d+)", meta)
                flags = re.search(r"FLAGS \(([^)]*)\)", meta)
                subject = item[1].decode().partition(":")[2].strip()
                if uid:
                    out[uid.group(1)] = (flags.group(1) if flags else "", subject)
        return out

    def log(self) -> str:
        try:
            return (self._path() / "dovecot.log").read_text()
        except (OSError, RuntimeError):
            return ""

    def stop(self) -> None:
        """Stop the master (by its pid file) and wait until it is gone, so its ports are free again."""
        if self.pid is not None:
            _stop_pid(self.pid, timeout=10)
            self.pid = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def mail_message(subject: str, body: str = "Hello.\n", sender: str = "customer@example.test",
                 to: str = "support@example.test", headers: dict[str, str] | None = None) -> bytes:
    """A small RFC 5322 message as bytes (CRLF line ends)."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Message-ID: <"
             + base64.b32encode(os.urandom(10)).decode().lower() + "@example.test>"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


# --- SMTP relay into Dovecot ------------------------------------------------------------------------------

RelayMode = Literal["relay", "swallow", "refuse"]


@dataclass
class Accepted:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class SmtpRelay:
    """aiosmtpd on a free port. `relay` passes each message to LMTP, `swallow` accepts and drops it,
    `refuse` answers RCPT with `refusal`. With `credentials`, AUTH PLAIN is checked against them."""

    lmtp: tuple[str, int] | None = None
    mode: RelayMode = "relay"
    refusal: str = "550 5.7.1 Relaying denied"
    credentials: tuple[str, str] | None = None
    auth_mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")
    port: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    _controller: Controller | None = None

    @classmethod
    def into(cls, dovecot: DovecotServer, mode: RelayMode = "relay") -> SmtpRelay:
        """A relay delivering into this Dovecot."""
        return cls(lmtp=(dovecot.host, dovecot.lmtp_port), mode=mode)

    def start(self) -> SmtpRelay:
        # aiosmtpd cannot bind port 0 (it connects to the port it was given to check it is up).
        self.port = free_port()
        excluded = [m for m in ("PLAIN", "LOGIN") if m not in self.auth_mechanisms]
        self._controller = Controller(self, hostname=HOST, port=self.port, auth_require_tls=False,
                                      auth_exclude_mechanism=excluded)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpRelay:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.mode == "refuse":
            return self.refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.accepted.append(Accepted(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content))
        if self.mode == "relay":
            if self.lmtp is None:
                return "451 4.3.0 no LMTP server to relay to"
            try:
                with smtplib.LMTP(self.lmtp[0], self.lmtp[1], timeout=10) as lmtp:
                    lmtp.sendmail(str(envelope.mail_from), list(envelope.rcpt_tos), envelope.content)
            except (smtplib.SMTPException, OSError) as exc:
                return f"451 4.3.0 relay failed: {type(exc).__name__}"
        return "250 OK"

    async def handle_AUTH(self, server: SMTP, session: Session, envelope: Envelope, args: list[str]) -> str:
        # Answered here rather than by aiosmtpd's built-in mechanisms (those warn about a deprecated attribute).
        refused = "535 5.7.8 Authentication credentials invalid"
        if self.credentials is None or args[0].upper() != "PLAIN" or len(args) != 2:
            # Clients fall back to LOGIN after a refused PLAIN; that must look like the same refusal.
            return refused
        _, user, password = base64.b64decode(args[1]).decode().split("\0")
        ok = (user, password) == self.credentials
        self.logins.append((user, ok))
        return "235 2.7.0 Authentication successful" if ok else refused


# --- SIP ----------------------------------------------------------------------------------------------------

_SIPP_SCENARIO = """\
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="answer OPTIONS">
  <recv request="OPTIONS" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


class SippServer:
    """SIPp answering every OPTIONS with `status` (e.g. "200 OK", "503 Service Unavailable")."""

    def __init__(self, status: str = "200 OK", transport: Literal["udp", "tcp"] = "udp") -> None:
        self.status = status
        self.transport = transport
        self.host = HOST
        self.port = 0
        self.pid: int | None = None
        self.root: Path | None = None

    def start(self, timeout: float = 10.0) -> SippServer:
        binary = require(SIPP, "sip-tester")
        self.root = Path(tempfile.mkdtemp(prefix="continuity-sipp-"))
        scenario = self.root / "options.xml"
        scenario.write_text(_SIPP_SCENARIO.format(status=self.status))
        self.port = free_port(socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM)
        args = [binary, "-sf", str(scenario), "-i", self.host, "-p", str(self.port), "-bg"]
        if self.transport == "tcp":
            args[1:1] = ["-t", "t1"]
        out = self.root / "sipp.out"
        # Output to a file, not a pipe: the background SIPp inherits it and would keep a pipe open forever.
        with out.open("wb") as sink:
            subprocess.run(args, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           cwd=self.root, timeout=timeout, check=False)
        text = out.read_text(errors="replace")
        found = re.search(r"PID=\[(\d+)\]", text)
        if found is None:
            self._cleanup()
            raise RuntimeError(f"sipp did not start in the background: {text.strip()}")
        self.pid = int(found.group(1))
        end = time.monotonic() + timeout
        while not _listening(self.port, self.transport):
            if time.monotonic() > end or _wait_pid_exit(self.pid, 0):
                text = out.read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"sipp is not listening on {self.transport} port {self.port}: {text.strip()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.pid is not None:
            _stop_pid(self.pid, timeout=5)
            self.pid = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> SippServer:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class SilentUdpPort:
    """A bound UDP socket that never answers (a hung PBX); `received()` counts the datagrams that came."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []

    def received(self) -> list[bytes]:
        """Everything that arrived so far (drained from the socket's queue)."""
        while True:
            try:
                self.datagrams.append(self.sock.recv(65536))
            except BlockingIOError:
                return self.datagrams

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SilentUdpPort:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
