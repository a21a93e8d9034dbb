"""The contract between the runner and every sink.

A sink acts and reports; it never raises for a remote failure. It returns an Outcome and the runner decides
about retries, backoff and the ledger (Alertmanager's retry stage, done once, not in every sink).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from continuity.clock import Clock


class SinkSettings(BaseModel):
    """Base for every sink's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


# Line breaks (CR, LF, and the other characters str.splitlines breaks at) and control characters, with the
# whitespace around them.
_BREAKS = re.compile(r"\s*[\x00-\x1f\x7f\x85\u2028\u2029]+\s*")


def one_line(text: str) -> str:
    """Text for a header: every line break or control character (and the whitespace around it) is one space."""
    return _BREAKS.sub(" ", text).strip()


@dataclass(frozen=True)
class Rendered:
    """One locale's rendering of a step's template: every block the template defines."""

    locale: str
    blocks: dict[str, str]

    @property
    def subject(self) -> str:
        # One line: it becomes the Subject header of mail (outbox, email, the auto-reply). A title typed with a
        # line break (a YAML block, a pasted "x\r\nBcc: …") made Python's email refuse the header, which failed
        # every mail step of the situation; as one line it cannot start a header of its own either.
        return one_line(self.blocks.get("subject") or self.blocks.get("title") or "")

    @property
    def title(self) -> str:
        return self.blocks.get("title") or self.blocks.get("subject") or ""

    @property
    def body(self) -> str:
        return self.blocks.get("body", "")


@dataclass(frozen=True)
class Earlier:
    """A ledger row this sink already carried out for the same situation, as the runner read it.

    Lets a sink build on its own earlier work without a store of its own: the X sink finds the post to reply
    to (the thread root) and the posts to delete on undo in the `detail` it returned back then.
    """

    key: str
    step_id: str
    phase: str
    state: str
    detail: str


@dataclass(frozen=True)
class Action:
    """One thing the runner asks a sink to do, fully rendered.

    `key` is stable across retries and restarts of the same ledger row: sinks use it as an idempotency key
    (webhook header, Message-ID, file name). `undo` actions carry the key of the step they switch off in
    `target_key`.
    """

    key: str
    operation: Literal["apply", "undo"]
    kind: str
    situation_id: int
    step_id: str
    channel: str
    audience: Literal["staff", "customers"]
    messages: list[Rendered]
    facts: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    target_key: str | None = None
    # This sink's earlier rows of the same situation that took effect (done, uncertain, undone), oldest first.
    earlier: tuple[Earlier, ...] = ()

    @property
    def primary(self) -> Rendered:
        return self.messages[0]


@dataclass(frozen=True)
class Outcome:
    """What a sink reports. `uncertain`: the remote may have acted but never confirmed (the reply to the final
    dot of an e-mail never came); the runner neither retries it nor calls it done, a person settles it."""

    status: Literal["ok", "retryable", "error", "uncertain"]
    detail: str = ""
    # The earliest a retry can succeed, when the remote said so (a rate limit's reset): the runner waits at
    # least this long instead of its own shorter backoff.
    retry_after: timedelta | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def success(cls, detail: str = "") -> Outcome:
        return cls("ok", detail)

    @classmethod
    def retry(cls, detail: str, after: timedelta | None = None) -> Outcome:
        return cls("retryable", detail, after)

    @classmethod
    def fail(cls, detail: str) -> Outcome:
        return cls("error", detail)

    @classmethod
    def unsure(cls, detail: str) -> Outcome:
        return cls("uncertain", detail)


@dataclass(frozen=True)
class RenderProblem:
    """Why a sink could not send a rendering it would be given (found by `continuity validate`).

    `locale` names the rendering at fault (its template is the place to fix), or is None when the sink's
    settings are at fault, in which case `field` names the setting.
    """

    message: str
    locale: str | None = None
    field: str | None = None


class SendMarks(Protocol):
    """Durable notes of how far a sink got with each part of one action (a recipient, a chat target).

    A sink whose sends cannot be repeated safely writes `ending` just before its point of no return and `sent`
    once the remote confirmed; a retry or a restart reads them and never sends a part twice. The runner hands
    every sink one backed by the store, so a restarted daemon still knows what it sent.
    """

    def state(self, key: str, part: str) -> str | None:
        """'ending', 'sent' or None (never got that far)."""
        ...

    def ending(self, key: str, part: str) -> None:
        """About to pass the point of no return for this part."""
        ...

    def sent(self, key: str, part: str, detail: str = "") -> None:
        """The remote confirmed this part."""
        ...

    def forget(self, key: str, part: str) -> None:
        """This part was refused after all: nothing went out, it may be sent again."""
        ...

    def detail(self, key: str, part: str) -> str:
        """What `sent` recorded for this part ('' when nothing)."""
        ...


class MemoryMarks:
    """SendMarks kept in this process only: for sinks used without a store (previews, a sink's own tests)."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, str], tuple[str, str]] = {}

    def state(self, key: str, part: str) -> str | None:
        got = self._marks.get((key, part))
        return got[0] if got else None

    def ending(self, key: str, part: str) -> None:
        self._marks[(key, part)] = ("ending", "")

    def sent(self, key: str, part: str, detail: str = "") -> None:
        self._marks[(key, part)] = ("sent", detail)

    def forget(self, key: str, part: str) -> None:
        self._marks.pop((key, part), None)

    def detail(self, key: str, part: str) -> str:
        got = self._marks.get((key, part))
        return got[1] if got else ""


@dataclass(frozen=True)
class SinkContext:
    """What a sink may know about its surroundings: where relative paths start, the time, and its marks."""

    base_dir: Path
    clock: Clock
    marks: SendMarks = field(default_factory=MemoryMarks)


class Sink:
    """Base class: subclasses set the class attributes and implement apply (and undo when reversible).

    idempotent: applying the same `Action.key` twice has one effect (a file named by the key, an
    Idempotency-Key the receiver honours). After a crash, the runner re-runs an interrupted idempotent step
    and marks a non-idempotent one `uncertain` for the operator instead of risking a second message.
    """

    type_name: ClassVar[str]
    Settings: ClassVar[type[SinkSettings]] = SinkSettings
    actions: ClassVar[frozenset[str]]
    idempotent: ClassVar[bool] = False
    reversible: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, name: str, settings: SinkSettings, context: SinkContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    async def apply(self, action: Action) -> Outcome:
        raise NotImplementedError

    async def undo(self, action: Action) -> Outcome:
        return Outcome.fail(f"sink type {self.type_name!r} cannot switch anything off")

    @classmethod
    def check_rendered(cls, settings: SinkSettings, messages: list[Rendered]) -> list[RenderProblem]:
        """Problems this sink would have sending these renderings (every locale, primary first), so
        `validate` catches them with sample data before the bad day: a post too long for X, a body that is
        not JSON. The default has none."""
        return []

    async def aclose(self) -> None:
        """Release pooled connections; called once when the runner is done."""


def resolve_path(context: SinkContext, path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else context.base_dir / p
