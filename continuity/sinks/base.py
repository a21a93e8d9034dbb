"""The contract between the runner and every sink.

A sink acts and reports; it never raises for a remote failure. It returns an Outcome and the runner decides
about retries, backoff and the ledger (Alertmanager's retry stage, done once, not in every sink).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from continuity.clock import Clock


class SinkSettings(BaseModel):
    """Base for every sink's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Rendered:
    """One locale's rendering of a step's template: every block the template defines."""

    locale: str
    blocks: dict[str, str]

    @property
    def subject(self) -> str:
        return self.blocks.get("subject") or self.blocks.get("title") or ""

    @property
    def title(self) -> str:
        return self.blocks.get("title") or self.blocks.get("subject") or ""

    @property
    def body(self) -> str:
        return self.blocks.get("body", "")


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

    @property
    def primary(self) -> Rendered:
        return self.messages[0]


@dataclass(frozen=True)
class Outcome:
    status: Literal["ok", "retryable", "error"]
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def success(cls, detail: str = "") -> Outcome:
        return cls("ok", detail)

    @classmethod
    def retry(cls, detail: str) -> Outcome:
        return cls("retryable", detail)

    @classmethod
    def fail(cls, detail: str) -> Outcome:
        return cls("error", detail)


@dataclass(frozen=True)
class SinkContext:
    """What a sink may know about its surroundings: where relative paths start, and the time."""

    base_dir: Path
    clock: Clock


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

    async def aclose(self) -> None:
        """Release pooled connections; called once when the runner is done."""


def resolve_path(context: SinkContext, path: str | Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else context.base_dir / p
