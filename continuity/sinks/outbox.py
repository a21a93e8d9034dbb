"""The default sink: every outgoing message becomes a file in a local folder, so a fresh install shows
exactly what would go out. Mail-like messages are `.eml`, the rest `.json`.

File names derive from the ledger key and are created exclusively, so re-running an interrupted step
finds its file and does not write a second one (this sink is idempotent).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import ClassVar, Literal

from continuity.actions import ACTIONS
from continuity.mailpolicy import MAIL
from continuity.sinks.base import Action, Outcome, Sink, SinkSettings, resolve_path

MAIL_ACTIONS = frozenset({"notify", "notice", "autoreply"})


class OutboxSettings(SinkSettings):
    directory: str = "outbox"
    format: Literal["auto", "eml", "json"] = "auto"
    sender: str = "continuity@localhost"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:120]


class OutboxSink(Sink):
    type_name = "outbox"
    Settings: ClassVar[type[SinkSettings]] = OutboxSettings
    actions: ClassVar[frozenset[str]] = frozenset(ACTIONS)
    idempotent = True
    reversible = True
    description = "one file per outgoing message in a local folder (.eml for mail, .json otherwise)"

    @property
    def directory(self) -> Path:
        settings = self.settings
        assert isinstance(settings, OutboxSettings)
        return resolve_path(self.context, settings.directory)

    def file_for(self, action: Action) -> Path:
        settings = self.settings
        assert isinstance(settings, OutboxSettings)
        fmt = settings.format
        if fmt == "auto":
            fmt = "eml" if action.kind in MAIL_ACTIONS and action.operation == "apply" else "json"
        stamp = (action.created_at or self.context.clock.now()).strftime("%Y%m%dT%H%M%SZ")
        digest = hashlib.sha256(action.key.encode()).hexdigest()[:8]
        name = f"{stamp}-s{action.situation_id}-{_slug(action.step_id)}-{action.operation}-{digest}.{fmt}"
        return self.directory / name

    def _content(self, action: Action, path: Path) -> bytes:
        if path.suffix == ".eml":
            settings = self.settings
            assert isinstance(settings, OutboxSettings)
            msg = EmailMessage(policy=MAIL)
            msg["From"] = settings.sender
            msg["To"] = f"{action.audience}@outbox.invalid"
            msg["Subject"] = action.primary.subject
            msg["Date"] = format_datetime(action.created_at or self.context.clock.now())
            msg["Message-ID"] = f"<{hashlib.sha256(action.key.encode()).hexdigest()[:32]}@continuity>"
            msg["Auto-Submitted"] = "auto-generated"
            msg["X-Continuity-Key"] = action.key
            bodies = [m.body for m in action.messages]
            msg.set_content(("\n\n" + "-" * 40 + "\n\n").join(bodies) + "\n", cte="8bit")
            # After set_content, which drops every Content-* header set before it.
            msg["Content-Language"] = ", ".join(m.locale for m in action.messages)
            return bytes(msg)
        doc = {
            "operation": action.operation,
            "key": action.key,
            "kind": action.kind,
            "situation_id": action.situation_id,
            "step_id": action.step_id,
            "channel": action.channel,
            "audience": action.audience,
            "at": (action.created_at or self.context.clock.now()).isoformat(),
            "messages": [{"locale": m.locale, **m.blocks} for m in action.messages],
            "facts": action.facts,
        }
        return (json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n").encode()

    def _write(self, action: Action) -> Outcome:
        path = self.file_for(action)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self._content(action, path))
                    fh.flush()
                    os.fsync(fh.fileno())
                try:
                    os.link(tmp, path)  # exclusive: fails if an earlier run already wrote it
                except FileExistsError:
                    return Outcome.success(f"{path.name} already in the outbox")
            finally:
                os.unlink(tmp)
        except OSError as exc:
            return Outcome.retry(f"cannot write to outbox {path.parent}: {exc.strerror}")
        return Outcome.success(str(path))

    async def apply(self, action: Action) -> Outcome:
        return self._write(action)

    async def undo(self, action: Action) -> Outcome:
        return self._write(action)
