"""The answer itself: the text from the situations' templates, and a reply's headers (RFC 3834, RFC 5322).

One answer covers every open situation the customer's mail arrived during. With one situation, its
`autoreply` template is the answer (subject and body). With several (the phone is down during a campaign),
each situation's template contributes its `summary` block (or its body, if it has none) to the shipped
`autoreply/combined` template, which greets once, lists what is going on and signs once: one coherent
letter instead of two letters glued together.
"""

from __future__ import annotations

import hashlib
import re
import time
from datetime import datetime
from email import quoprimime
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING, Any

from continuity.autoreply.state import Part, Pending
from continuity.templating import TemplateCatalog
from continuity.variables import Obj, template_context

if TYPE_CHECKING:
    from continuity.autoreply.message import Incoming
    from continuity.clock import Clock
    from continuity.config.loader import LoadedConfig
    from continuity.sinks.autoreply import AutoreplySettings

COMBINED = "autoreply/combined"
# Rendered texts are reused for this long: they only change with the situations (ETA, reason) and the clock.
CACHE_SECONDS = 30.0
_RE_PREFIX = re.compile(r"^\s*(re|aw|sv|vs|odp|vá|re\[\d+\])\s*:", re.IGNORECASE)


def reply_subject(original: str, fallback: str) -> str:
    """`Re: <original>`, never `Re: Re: …`; the template's subject when the original had none."""
    subject = " ".join(original.split())[:300]
    if not subject:
        return " ".join(fallback.split())
    return subject if _RE_PREFIX.match(subject) else f"Re: {subject}"


def reply_recipient(msg: Incoming) -> str | None:
    """Where the answer goes: the first address in Reply-To if there is one, else the sender (From)."""
    for address in msg.reply_to:
        if "@" in address and not any(c in address for c in "\r\n<>,; "):
            return address
    return msg.sender


def answer_id(address: str, mailbox: str, key: str) -> str:
    """The answer's Message-ID: new to the conversation, but the same every time this message is answered,
    so a receiving system that deduplicates by Message-ID drops a resend."""
    domain = address.rpartition("@")[2] or "continuity"
    digest = hashlib.sha256(f"{mailbox}\0{key}".encode()).hexdigest()[:32]
    return f"<autoreply.{digest}@{domain}>"


class Composer:
    """Renders answers for one mailbox through the sandboxed template catalog."""

    def __init__(self, loaded: LoadedConfig, clock: Clock) -> None:
        self.loaded = loaded
        self.clock = clock
        self.catalog = TemplateCatalog(loaded)
        self._cache: dict[tuple[Any, ...], tuple[float, str, str]] = {}
        self._bodies: dict[str, bytes] = {}

    @property
    def served(self) -> list[str]:
        return list(self.loaded.config.organisation.locales)

    @property
    def default_locale(self) -> str:
        return self.loaded.config.organisation.default_locale

    def _context(self, part: Part, locale: str, now: datetime) -> dict[str, Any]:
        sit = part.situation
        playbook = self.loaded.playbooks.get(sit.playbook)
        return template_context(self.loaded, sit, playbook, locale, now, step_id="autoreply")

    def text(self, parts: list[Part], locale: str) -> tuple[str, str]:
        """(subject, body) in `locale` for these situations; raises InputError for a broken template."""
        key = (locale, tuple((p.situation.id, p.situation.revision, p.situation.reason, p.template) for p in parts))
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        now = self.clock.now()
        if len(parts) == 1:
            rendered = self.catalog.render(parts[0].template, locale, self._context(parts[0], locale, now))
            subject, body = rendered.subject, rendered.body
        else:
            pieces = []
            for part in parts:
                r = self.catalog.render(part.template, locale, self._context(part, locale, now))
                pieces.append(Obj({"subject": r.subject, "summary": r.blocks.get("summary") or r.body}))
            org = self.loaded.config.organisation
            ctx = {"locale": locale, "parts": pieces,
                   "org": Obj({"name": org.name, "website": org.website, "status_url": org.status_url})}
            rendered = self.catalog.render(COMBINED, locale, ctx)
            subject, body = rendered.subject, rendered.body
        if len(self._cache) > 256:  # situations come and go: keep the texts of the current ones only
            self._cache.clear()
        self._cache[key] = (time.monotonic(), subject, body)
        return subject, body

    def encoded(self, parts: list[Part], locale: str) -> tuple[str, bytes]:
        """(subject, quoted-printable body with CRLF line ends) for these situations; cached like text()."""
        subject, body = self.text(parts, locale)
        cached = self._bodies.get(body)
        if cached is None:
            text = body.strip("\n") + "\n"
            cached = quoprimime.body_encode(text.encode("utf-8").decode("latin-1"), 76, eol="\r\n").encode("ascii")
            if len(self._bodies) > 64:
                self._bodies.clear()
            self._bodies[body] = cached
        return subject, cached

    def answer_bytes(self, pending: Pending, parts: list[Part], settings: AutoreplySettings, mailbox: str) -> bytes:
        """The answer to one message as SMTP DATA, written directly: with a backlog of thousands, building an
        EmailMessage per answer (header objects, refolding) cost more than sending it. `build` makes the
        same message the slow, obvious way; the tests check both agree."""
        template_subject, body = self.encoded(parts, pending.language)
        name = settings.from_name if settings.from_name is not None else self.loaded.config.organisation.name
        headers = [
            ("From", formataddr((name, settings.address), charset="utf-8")),
            ("To", pending.recipient),
            ("Subject", _encode_header(reply_subject(pending.subject, template_subject), "Subject")),
            ("Date", format_datetime(self.clock.now())),
            ("Message-ID", answer_id(settings.address, mailbox, pending.key)),
        ]
        if pending.in_reply_to:
            headers.append(("In-Reply-To", pending.in_reply_to))
        references = _references(pending)
        if references:
            headers.append(("References", "\r\n ".join(references)))
        headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"),
                    ("X-Loop", settings.address), ("Content-Language", pending.language), ("MIME-Version", "1.0"),
                    ("Content-Type", 'text/plain; charset="utf-8"'), ("Content-Transfer-Encoding", "quoted-printable")]
        head = "".join(f"{k}: {v}\r\n" for k, v in headers)
        return head.encode("ascii") + b"\r\n" + body

    def build(self, pending: Pending, parts: list[Part], settings: AutoreplySettings, mailbox: str) -> EmailMessage:
        """The answer to one message as an EmailMessage (what answer_bytes writes directly)."""
        template_subject, body = self.text(parts, pending.language)
        msg = EmailMessage()
        name = settings.from_name if settings.from_name is not None else self.loaded.config.organisation.name
        msg["From"] = formataddr((name, settings.address))
        msg["To"] = pending.recipient
        msg["Subject"] = reply_subject(pending.subject, template_subject)
        msg["Date"] = format_datetime(self.clock.now())
        msg["Message-ID"] = answer_id(settings.address, mailbox, pending.key)
        if pending.in_reply_to:
            msg["In-Reply-To"] = pending.in_reply_to
        references = _references(pending)
        if references:
            msg["References"] = " ".join(references)
        # RFC 3834: marks this as an automatic answer, so other responders stay quiet (and Exchange too).
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"
        msg["X-Loop"] = settings.address
        msg.set_content(body.strip("\n") + "\n", cte="quoted-printable")
        msg["Content-Language"] = pending.language  # after set_content, which drops Content-* headers
        return msg


def as_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=SMTP)


def _references(pending: Pending) -> list[str]:
    """The original's References (the last 20) plus its Message-ID (RFC 5322 3.6.4), without repeats."""
    ids = [*pending.references[-20:], *([pending.in_reply_to] if pending.in_reply_to else [])]
    return list(dict.fromkeys(ids))


def _encode_header(value: str, name: str) -> str:
    """ASCII as it is; anything else as RFC 2047 encoded words, folded."""
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
