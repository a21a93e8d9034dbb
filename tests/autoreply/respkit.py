"""Helpers for the responder's tests: a mailbox sink in the example config, an SMTP peer that can say 451,
Maildir drops for big backlogs, and running a Responder until something happened.

Built on tests/probes/mailpeers.py (Dovecot, aiosmtpd): reused, not copied.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import pwd
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from continuity.autoreply.responder import Responder
from continuity.engine import Engine
from continuity.sinks.autoreply import AutoreplySettings
from continuity.store.sqlite import SqliteStore
from tests.probes.mailpeers import DovecotServer, MailUser, SmtpRelay

REASON = "SIP trunk down at the provider"


@dataclass
class ScriptedRelay(SmtpRelay):
    """aiosmtpd that answers the first `temp_failures` RCPTs with 451 and takes `delay` seconds per DATA."""

    temp_failures: int = 0
    delay: float = 0.0
    refused: int = 0
    # Every message whose final dot reached the relay, answered 250 or not (a client killed during `delay`).
    arrived: list[bytes] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.temp_failures > 0:
            self.temp_failures -= 1
            self.refused += 1
            return "451 4.7.1 Too many messages, slow down"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.arrived.append(envelope.content)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)

    def start_on(self, port: int) -> ScriptedRelay:
        """Start on a chosen port (a mail server coming back where the responder expects it)."""
        from aiosmtpd.controller import Controller

        self.port = port
        self._controller = Controller(self, hostname="127.0.0.1", port=port, auth_require_tls=False)
        self._controller.start()
        return self

    def answers(self) -> list[EmailMessage]:
        out = []
        for a in list(self.accepted):
            msg = email.message_from_bytes(a.content, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


def env_name(sink: str) -> str:
    return f"PW_{sink.upper()}"


def mailbox_sink(dovecot: DovecotServer, user: MailUser, relay: SmtpRelay, **extra: Any) -> dict[str, Any]:
    """An `autoreply` sink for a Dovecot user, answering through the relay, polling every second."""
    return {"type": "autoreply", "address": user.address, "imap_host": dovecot.host, "imap_port": dovecot.imap_port,
            "imap_security": "none", "imap_password": "${" + env_name(extra.pop("sink", "support")) + "}",
            "smtp_host": "127.0.0.1", "smtp_port": relay.port, "smtp_security": "none", "poll_interval": "1s",
            "timeout": "10s", **extra}


def add_mailbox(cfg: dict[str, Any], name: str, sink: dict[str, Any]) -> None:
    cfg.setdefault("sinks", {})[name] = sink
    cfg["routes"]["autoreply"] = [*[r for r in cfg["routes"].get("autoreply", []) if r != "outbox"], name]


def responder(eng: Engine, name: str = "support", store: SqliteStore | None = None, **options: Any) -> Responder:
    """A responder for sink `name` of the engine's config (on its own store connection when given)."""
    settings = eng.loaded.sinks[name].settings
    assert isinstance(settings, AutoreplySettings)
    options.setdefault("first_delay", 0.2)
    options.setdefault("max_delay", 1.0)
    return Responder(name, settings, eng.loaded, store or eng.store, eng.clock, **options)


async def run_until(resp: Responder, done: Callable[[], bool], timeout: float = 20.0, *,
                    stop: bool = True) -> float:
    """Run the responder until `done()` (checked every 50 ms); stop it; the seconds it took."""
    started = time.monotonic()
    task = asyncio.ensure_future(resp.run())
    try:
        while not done():
            if task.done():
                task.result()
                break
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not done within {timeout}s (counts so far: {dict(resp.counts)})")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        if stop:
            resp.stop()
            await asyncio.wait_for(task, 15)


def maildir_drop(dovecot: DovecotServer, user: MailUser, messages: list[bytes]) -> None:
    """Write messages straight into the user's Maildir `new/` (much faster than LMTP for big backlogs)."""
    assert dovecot.root is not None
    base = dovecot.root / "mail" / user.address
    ids = None
    if os.geteuid() == 0:
        mail = pwd.getpwnam("mail")
        ids = (mail.pw_uid, mail.pw_gid)
    for sub in ("", "cur", "new", "tmp"):
        folder = base / sub
        folder.mkdir(exist_ok=True)
        if ids:
            os.chown(folder, *ids)
    stamp = int(time.time())
    for i, raw in enumerate(messages):
        tmp = base / "tmp" / f"{stamp}.P{os.getpid()}Q{i}.continuity-test"
        tmp.write_bytes(raw)
        if ids:
            os.chown(tmp, *ids)
        tmp.rename(base / "new" / tmp.name)


def flags(dovecot: DovecotServer, user: MailUser) -> list[str]:
    return [f for f, _ in dovecot.messages(user.address, user.password).values()]


def by_reply_to(answers: list[EmailMessage]) -> dict[str, int]:
    """How many answers each original Message-ID got."""
    out: dict[str, int] = {}
    for a in answers:
        key = str(a["In-Reply-To"])
        out[key] = out.get(key, 0) + 1
    return out


def db_rows(path: Path, sql: str, *args: Any) -> list[Any]:
    store = SqliteStore(path)
    try:
        return store.conn.execute(sql, args).fetchall()
    finally:
        store.close()
