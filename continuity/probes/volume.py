"""Volume reading: how much work is waiting, compared with a threshold. It feeds a channel's `surge:` watch.

Two sources:
- `imap`: the count of unseen messages in a mailbox, read with `STATUS mailbox (UNSEEN)`. STATUS never opens
  the mailbox, so no flag changes and nobody's "new" messages turn "read" because the daemon looked;
- `http`: a number in a JSON document (a help-desk queue's statistics endpoint) at an RFC 6901 pointer
  (`/queues/0/open`) or a dotted path (`queues.0.open`). A list found there counts as its length.

The probe's check() says `up` at or under the threshold and `degraded` above it (a surge is not a channel
failure), with the reading as its reason; `down` only when nothing could be read.
"""

from __future__ import annotations

import asyncio
import imaplib
import json
import math
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from continuity.config.envrefs import EnvHeaders, EnvUrl, Secret
from continuity.net.http import ClientSlot
from continuity.net.imap import ImapFailure, ImapSession, Security, imap_reason, imap_text, mailbox_name
from continuity.net.reason import scrub
from continuity.probes.base import Probe, ProbeContext, ProbeResult, ProbeSettings
from continuity.probes.http import MAX_BODY, check_http_url, url_host
from continuity.probes.tcp import describe_network_error
from continuity.threads import in_thread

if TYPE_CHECKING:
    import httpx

_UNSEEN = re.compile(r"\(.*\bUNSEEN\s+(\d+)", re.IGNORECASE)


class VolumeSettings(ProbeSettings):
    """Where the number comes from, and the threshold above which the channel is surging."""

    source: Literal["imap", "http"]
    threshold: float = Field(ge=0, description="readings above this count as a surge")
    what: str | None = Field(default=None, min_length=1, max_length=120,
                             description="words for the reading in messages, e.g. 'open tickets in the queue'")
    # imap
    host: str | None = Field(default=None, min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "none"
    username: str | None = Field(default=None, min_length=1)
    password: Secret | None = None
    mailbox: str = Field(default="INBOX", min_length=1)
    # http
    url: EnvUrl | None = None
    pointer: str | None = Field(default=None, description="RFC 6901 pointer (/a/0/b) or dotted path (a.0.b)")
    headers: EnvHeaders = Field(default_factory=dict)
    bearer_token: Secret | None = None
    # both
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return check_http_url(value) if value is not None else None

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("threshold must be a number")
        return value

    @model_validator(mode="after")
    def _fields_fit_source(self) -> VolumeSettings:
        imap_only = {"host": self.host, "port": self.port, "username": self.username, "password": self.password}
        http_only = {"url": self.url, "pointer": self.pointer, "bearer_token": self.bearer_token,
                     "headers": self.headers or None}
        if self.source == "imap":
            missing = [k for k in ("host", "username", "password") if imap_only[k] is None]
            stray = [k for k, v in http_only.items() if v is not None]
        else:
            missing = [k for k in ("url", "pointer") if http_only[k] is None]
            stray = [k for k, v in imap_only.items() if v is not None]
        if missing:
            raise ValueError(f"a volume probe with source {self.source} needs {', '.join(missing)}")
        if stray:
            raise ValueError(f"{', '.join(stray)} do(es) not apply to source {self.source}")
        if self.pointer is not None:
            parse_pointer(self.pointer)
        if self.bearer_token is not None and any(k.lower() == "authorization" for k in self.headers):
            raise ValueError("give either bearer_token or an Authorization header, not both")
        return self


def parse_pointer(text: str) -> list[str]:
    """`/queues/0/open` (RFC 6901, with ~0 and ~1) or `queues.0.open` → the keys to follow."""
    text = text.strip()
    if text == "":
        raise ValueError("pointer is empty; use / for a number that is the whole document")
    if text.startswith("/"):
        if text == "/":
            return []
        return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]
    parts = text.split(".")
    if any(p == "" for p in parts):
        raise ValueError(f"bad dotted path {text!r}; write keys separated by single dots, like queue.open")
    return parts


class ReadingError(Exception):
    """The number could not be read; the message is the probe's reason."""


def number_at(document: Any, keys: list[str]) -> float:
    """Follow keys through dicts and lists; the number there (a list counts as its length)."""
    node = document
    walked = ""
    for key in keys:
        walked += "/" + key
        if isinstance(node, dict):
            if key not in node:
                raise ReadingError(f"no {walked} in the JSON")
            node = node[key]
        elif isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ReadingError(f"no {walked} in the JSON (a list of {len(node)})")
            node = node[int(key)]
        else:
            raise ReadingError(f"no {walked} in the JSON ({walked.rsplit('/', 1)[0] or '/'} is not an object)")
    where = walked or "/"
    if isinstance(node, bool) or node is None:
        raise ReadingError(f"{where} is {json.dumps(node)}, not a number")
    if isinstance(node, int | float):
        return float(node)
    if isinstance(node, list):
        return float(len(node))
    if isinstance(node, str):
        try:
            value = float(node.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    if isinstance(node, dict):
        names = ", ".join(list(node)[:6]) + (", …" if len(node) > 6 else "")
        raise ReadingError(f"{where} is an object ({names}), not a number")
    shown = json.dumps(node)
    raise ReadingError(f"{where} is {shown[:40] + '…' if len(shown) > 40 else shown}, not a number")


def format_number(value: float) -> str:
    """412, 3.5, 1200000: how a reading reads in a message."""
    return str(int(value)) if value.is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Reading:
    """One reading of a volume probe."""

    probe: str
    value: float
    threshold: float
    text: str  # "412 unseen messages in support@example.test (threshold 200)"
    latency: float

    @property
    def above(self) -> bool:
        return self.value > self.threshold


class VolumeProbe(Probe):
    """Reads a number (unseen mail, a queue length) and compares it with `threshold`."""

    type_name = "volume"
    Settings = VolumeSettings
    description = "a number (unseen messages in a mailbox, a help-desk queue) stays under its threshold"

    settings: VolumeSettings

    def __init__(self, settings: VolumeSettings, context: ProbeContext, *,
                 client: httpx.AsyncClient | None = None) -> None:
        super().__init__(settings, context)
        self._http = ClientSlot(client if settings.verify_tls else None, verify=settings.verify_tls,
                                timeout=self.timeout)
        self._keys = parse_pointer(settings.pointer) if settings.pointer is not None else []

    @property
    def where(self) -> str:
        """What is being counted, for messages: the mailbox or the endpoint (never credentials or queries)."""
        s = self.settings
        if s.what:
            return s.what
        if s.source == "imap":
            box = "" if s.mailbox.upper() == "INBOX" else f"/{s.mailbox}"
            return f"unseen messages in {s.username}{box}"
        return f"at {url_host(s.url or '') or 'the endpoint'} {s.pointer}"

    def describe(self, value: float) -> str:
        return f"{format_number(value)} {self.where} (threshold {format_number(self.settings.threshold)})"

    async def read(self) -> Reading:
        """One reading; ReadingError with a reason when there is no number to be had."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if self.settings.source == "imap":
                    value = await in_thread(self._unseen, time.monotonic() + self.timeout)
                else:
                    value = await self._fetch_number()
        except TimeoutError:
            raise ReadingError(f"timed out after {self.timeout:g}s") from None
        return Reading(self.label, value, self.settings.threshold, self.describe(value),
                       time.perf_counter() - started)

    async def check(self) -> ProbeResult:
        started = time.perf_counter()
        try:
            reading = await self.read()
        except ReadingError as exc:
            return self.result("down", started, str(exc))
        return self.result("degraded" if reading.above else "up", started, reading.text)

    # imap -----------------------------------------------------------------------------------------------------

    def _unseen(self, deadline: float) -> float:
        s = self.settings
        assert s.host is not None and s.username is not None and s.password is not None
        password = s.password.get_secret_value()
        port = s.port or (993 if s.security == "tls" else 143)
        session = _StatusSession(s.host, port, s.security, s.verify_tls, deadline)
        try:
            session.open()
            session.login(s.username, password)
            return float(session.unseen(s.mailbox))
        except (ImapFailure, imaplib.IMAP4.error, OSError) as exc:
            raise ReadingError(imap_reason(exc, self.timeout, password)) from None
        finally:
            session.close()

    # http -----------------------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        return self._http.get()

    async def _fetch_number(self) -> float:
        import httpx

        s = self.settings
        assert s.url is not None
        headers = {"User-Agent": self.context.user_agent, "Accept": "application/json", **s.headers}
        if s.bearer_token is not None:
            headers["Authorization"] = f"Bearer {s.bearer_token.get_secret_value()}"
        try:
            response = await self._client().get(s.url, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ReadingError(f"timed out after {self.timeout:g}s") from None
        except (httpx.HTTPError, OSError) as exc:
            raise ReadingError(describe_network_error(exc, url_host(s.url))) from None
        if response.status_code != 200:
            raise ReadingError(f"HTTP {response.status_code}")
        if len(response.content) > MAX_BODY:
            raise ReadingError(f"the answer is larger than {MAX_BODY >> 20} MiB")
        try:
            document = json.loads(response.content)
        except ValueError:
            raise ReadingError("the endpoint answered with bad JSON") from None
        return number_at(document, self._keys)

    async def aclose(self) -> None:
        await self._http.aclose()


class _StatusSession(ImapSession):
    """The IMAP probe's bounded session, plus STATUS: counts without selecting, so no flag ever changes."""

    def unseen(self, mailbox: str) -> int:
        typ, data = self._arm().status(mailbox_name(mailbox), "(UNSEEN)")
        if typ != "OK":
            raise ImapFailure(f'cannot read mailbox "{mailbox}": {scrub(imap_text(data))}')
        match = _UNSEEN.search(imap_text(data))
        if match is None:
            raise ImapFailure(f"the server's STATUS answer has no UNSEEN count: {scrub(imap_text(data))}")
        return int(match.group(1))
