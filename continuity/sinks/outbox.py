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
# Header values the modern policy writes exactly as given: printable ASCII, single spaces, no encoded-word
# look-alike, short enough that nothing is folded. Anything else goes through EmailMessage.
_PLAIN_VALUE = re.compile(r"[!-~]+(?: [!-~]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")
_FOLD_AT = 78
_MAX_LINE = 998  # RFC 5322 line limit: longer body lines are left to the email package's judgement


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
    reads_earlier = False  # a file per row: what earlier rows did does not matter (see Runner._reads_earlier)
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

    def _mail_parts(self, action: Action) -> tuple[list[tuple[str, str]], str, str]:
        """(headers before the body's Content-* headers, the body text, Content-Language)."""
        settings = self.settings
        assert isinstance(settings, OutboxSettings)
        headers = [
            ("From", settings.sender),
            ("To", f"{action.audience}@outbox.invalid"),
            ("Subject", action.primary.subject),
            ("Date", format_datetime(action.created_at or self.context.clock.now())),
            ("Message-ID", f"<{hashlib.sha256(action.key.encode()).hexdigest()[:32]}@continuity>"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Continuity-Key", action.key),
        ]
        body = ("\n\n" + "-" * 40 + "\n\n").join(m.body for m in action.messages) + "\n"
        return headers, body, ", ".join(m.locale for m in action.messages)

    def _eml_built(self, action: Action) -> bytes:
        """The .eml through EmailMessage: the reference `_eml` must match, and the way for unusual values."""
        headers, body, languages = self._mail_parts(action)
        msg = EmailMessage(policy=MAIL)
        for name, value in headers:
            msg[name] = value
        msg.set_content(body, cte="8bit")
        # After set_content, which drops every Content-* header set before it.
        msg["Content-Language"] = languages
        return bytes(msg)

    def _eml(self, action: Action) -> bytes:
        """The .eml written in one pass when every header is plain (the usual case), else `_eml_built`: an
        EmailMessage parses each header into objects and then generates the text again, which cost more than
        the rest of a step."""
        headers, body, languages = self._mail_parts(action)
        headers = [*headers, ("Content-Type", 'text/plain; charset="utf-8"'), ("Content-Transfer-Encoding", "8bit"),
                   ("MIME-Version", "1.0"), ("Content-Language", languages)]
        for name, value in headers:
            if len(name) + 2 + len(value) > _FOLD_AT or not _PLAIN_VALUE.fullmatch(value) or "=?" in value:
                return self._eml_built(action)
            if name == "From" and not _PLAIN_ADDRESS.fullmatch(value):
                return self._eml_built(action)
        try:
            lines = body.encode("utf-8").splitlines()
        except UnicodeEncodeError:  # a lone surrogate: let the email package fail the way it always has
            return self._eml_built(action)
        if any(len(line) > _MAX_LINE for line in lines):
            return self._eml_built(action)
        head = "".join(f"{name}: {value}\n" for name, value in headers).encode("ascii")
        return head + b"\n" + b"\n".join(lines) + b"\n"

    def _content(self, action: Action, path: Path) -> bytes:
        if path.suffix == ".eml":
            return self._eml(action)
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
