"""Executes claimed ledger rows: render, apply (or undo) through the sink, record, retry.

Retry is decided once, in continuity.retry, not in every sink: a sink returns an Outcome, the engine records
it with the policy's next retry time, and the runner waits inline only within the command's budget. Rows run
concurrently, each with its own retries, so one failing sink never holds up the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from continuity.actions import ACTIONS
from continuity.errors import ContinuityError
from continuity.redact import Redactor, secrets_in
from continuity.retry import Budget
from continuity.sinks.base import Action, Earlier, Outcome, Rendered, Sink, SinkContext
from continuity.store.records import StepRecord
from continuity.variables import template_context

if TYPE_CHECKING:
    from continuity.clock import Clock
    from continuity.config.loader import LoadedConfig, SinkInstance
    from continuity.store.sqlite import SqliteStore
    from continuity.templating import TemplateCatalog


class Ledger(Protocol):
    """The runner's narrow view of the engine (continuity.engine.Engine is the one implementation): what it
    reads to build an action, and the two calls that record what happened. The runner never writes the
    ledger itself."""

    loaded: LoadedConfig
    store: SqliteStore
    clock: Clock
    sink_instances: dict[str, SinkInstance]

    @property
    def catalog(self) -> TemplateCatalog: ...

    def record_outcome(self, row: StepRecord, outcome: Outcome) -> tuple[StepRecord, str, timedelta | None]:
        """Write the outcome of one attempt; returns the row, its new state, and the delay before a retry."""
        ...

    def reclaim(self, row: StepRecord) -> StepRecord | None:
        """Claim a row again for its next attempt (None when another process has it)."""
        ...



@dataclass
class StepResult:
    row: StepRecord
    state: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.row.id,
            "situation_id": self.row.situation_id,
            "step": self.row.step_id,
            "phase": self.row.phase,
            "sink": self.row.sink,
            "action": self.row.action,
            "state": self.state,
            "attempts": self.row.attempts,
            "detail": self.detail,
        }


class Runner:
    def __init__(self, engine: Ledger) -> None:
        self.engine = engine
        self.catalog = engine.catalog  # shared by every run of this engine: templates compile once
        self._sinks: dict[str, Sink] = {}
        self._redactors: dict[str, Redactor] = {}

    def sink(self, name: str) -> Sink:
        sink = self._sinks.get(name)
        if sink is None:
            inst = self.engine.sink_instances[name]
            sink = inst.cls(name, inst.settings,
                            SinkContext(self.engine.loaded.base_dir, self.engine.clock, StoreMarks(self.engine)))
            self._sinks[name] = sink
        return sink

    def hide(self, sink_name: str, text: str) -> str:
        """`text` with the sink's secrets blanked. Sinks scrub what they write, but an exception's text (from a
        library, or a bug) was written by nobody here: every detail passes through this before the ledger."""
        redactor = self._redactors.get(sink_name)
        if redactor is None:
            inst = self.engine.sink_instances.get(sink_name)
            redactor = Redactor(secrets_in(inst.settings) if inst is not None else ())
            self._redactors[sink_name] = redactor
        return redactor.hide(text)

    async def aclose(self) -> None:
        for sink in self._sinks.values():
            await sink.aclose()
        self._sinks.clear()

    def build_action(self, row: StepRecord) -> Action:
        engine = self.engine
        situation = engine.store.get_situation(row.situation_id)
        assert situation is not None
        target = engine.store.get_step(row.undo_of) if row.undo_of else None
        kind = ACTIONS[row.action]
        now = engine.clock.now()
        playbook = engine.loaded.playbooks.get(situation.playbook)
        messages: list[Rendered] = []
        for locale in self.catalog.locales_for(kind.audience):
            ctx = template_context(engine.loaded, situation, playbook, locale, now,
                                   step_id=row.step_id, occurrence=row.occurrence)
            messages.append(self.catalog.render(row.template, locale, ctx))
        return Action(
            key=row.key,
            operation="undo" if row.phase == "undo" else "apply",
            kind=row.action,
            situation_id=row.situation_id,
            step_id=row.step_id,
            channel=situation.channel,
            audience=kind.audience,
            messages=messages,
            facts={
                "situation_kind": situation.kind,
                "reason": situation.reason,
                "eta": situation.eta.isoformat() if situation.eta else None,
                "opened_at": situation.opened_at.isoformat(),
                "closed_at": situation.closed_at.isoformat() if situation.closed_at else None,
                "revision": situation.revision,
                "occurrence": row.occurrence,
            },
            created_at=row.due_at,
            target_key=target.key if target else None,
            earlier=self.earlier(row) if self._reads_earlier(row.sink) else (),
        )

    def _reads_earlier(self, sink_name: str) -> bool:
        """Whether the row's sink looks at `Action.earlier` (a sink class says `reads_earlier = False` when it
        never does): reading the situation's every row per step made a long playbook quadratic."""
        inst = self.engine.sink_instances.get(sink_name)
        return inst is None or bool(getattr(inst.cls, "reads_earlier", True))

    def earlier(self, row: StepRecord) -> tuple[Earlier, ...]:
        """What this row's sink already did for the situation (so the X sink can thread its posts)."""
        rows = [r for r in self.engine.store.steps_for(row.situation_id)
                if r.sink == row.sink and r.id != row.id and r.state in ("done", "uncertain", "undone")]
        rows.sort(key=lambda r: (r.finished_at or r.started_at or r.due_at, r.id))
        return tuple(Earlier(r.key, r.step_id, r.phase, r.state, r.detail or "") for r in rows)

    async def _attempt(self, row: StepRecord, limit: float, cut: bool) -> Outcome:
        """One try of the row's sink, at most `limit` seconds (`cut`: the limit is what is left of the
        command's inline budget, not the sink's own timeout)."""
        # Preparing the row can fail for reasons no retry fixes (its sink was removed from the config, the
        # action kind is gone, a sink's settings no longer build): that is this row's failure, not the run's.
        if row.sink not in self.engine.sink_instances:
            return Outcome.fail(f"sink {row.sink!r} is no longer configured")
        try:
            action = self.build_action(row)
            sink = self.sink(row.sink)
        except ContinuityError as exc:
            return Outcome.fail(str(exc))
        except Exception as exc:
            return Outcome.fail(f"could not prepare step {row.step_id!r} for sink {row.sink!r}: "
                                f"{type(exc).__name__}: {exc}")
        try:
            call = sink.undo(action) if action.operation == "undo" else sink.apply(action)
            return await asyncio.wait_for(call, limit)
        except TimeoutError:
            why = (f"cut off after {limit:.1f}s, at the end of the command's inline budget" if cut
                   else f"did not answer within {limit:.0f}s")
            if row.idempotent:  # safe to run again: left for `tick` or the daemon
                return Outcome.retry(f"sink {row.sink!r} {why}; left for `continuity tick` or the daemon")
            # Stopped halfway through something that cannot be repeated safely: it may have acted.
            return Outcome.unsure(f"sink {row.sink!r} {why}, while it may have been sending; check, then "
                                  f"`continuity settle {row.id} sent` or `continuity settle {row.id} resend`")
        except Exception as exc:  # a sink bug must not stop the other steps
            return Outcome.retry(f"sink {row.sink!r} raised {type(exc).__name__}: {exc}")

    async def run_row(self, row: StepRecord, inline: bool = True) -> StepResult:
        """Run one claimed row to an outcome; whatever goes wrong on the way becomes this row's failure."""
        try:
            return await self._run_row(row, inline)
        except Exception as exc:
            return self.settle(row, f"step {row.step_id!r} → sink {row.sink!r} stopped: {type(exc).__name__}: {exc}")

    async def _run_row(self, row: StepRecord, inline: bool) -> StepResult:
        """Attempt, record, and retry inline while continuity.retry's budget allows; later retries are left to
        the next run (the ledger holds their time)."""
        loop = asyncio.get_running_loop()
        budget = Budget.of(self.engine.loaded.config.retry, inline, loop.time())
        while True:
            outcome = await self._attempt(row, *budget.attempt_limit(loop.time()))
            outcome = replace(outcome, detail=self.hide(row.sink, outcome.detail))
            row, state, delay = self.engine.record_outcome(row, outcome)
            if state != "failed" or delay is None or not budget.waits_for(delay, loop.time()):
                return StepResult(row, state, outcome.detail)
            await asyncio.sleep(delay.total_seconds())
            reclaimed = self.engine.reclaim(row)
            if reclaimed is None:  # someone else took it, or the situation closed meanwhile
                return StepResult(row, state, outcome.detail)
            row = reclaimed

    def settle(self, row: StepRecord, detail: str) -> StepResult:
        """Record an unexpected error as the row's final failure, so it is never left `running` unexplained."""
        detail = self.hide(row.sink, detail)
        current = self.engine.store.get_step(row.id) or row
        if current.state != "running":  # its outcome was already written; report what the ledger says
            return StepResult(current, current.state, detail)
        updated, state, _ = self.engine.record_outcome(current, Outcome.fail(detail))
        return StepResult(updated, state, detail)

    async def run(self, rows: list[StepRecord], inline: bool = True) -> list[StepResult]:
        if not rows:
            return []
        gathered = await asyncio.gather(*(self.run_row(r, inline) for r in rows), return_exceptions=True)
        results: list[StepResult] = []
        for row, got in zip(rows, gathered, strict=True):
            if isinstance(got, StepResult):
                results.append(got)
                continue
            if not isinstance(got, Exception):  # cancellation and interrupts stop the run as they should
                raise got
            detail = f"step {row.step_id!r} → sink {row.sink!r} stopped: {type(got).__name__}: {got}"
            try:
                results.append(self.settle(row, detail))
            except Exception as exc:  # the ledger itself failed: still report the row with the other results
                results.append(StepResult(row, "failed", self.hide(
                    row.sink, f"{detail} (not recorded: {type(exc).__name__}: {exc})")))
        return results


class StoreMarks:
    """The sinks' send marks, in the store: each one written (and synced) before the sink goes on."""

    def __init__(self, engine: Ledger) -> None:
        self.store = engine.store
        self.clock = engine.clock

    def _get(self, key: str, part: str) -> tuple[str, str] | None:
        return self.store.send_marks(key).get(part)

    def state(self, key: str, part: str) -> str | None:
        got = self._get(key, part)
        return got[0] if got else None

    def detail(self, key: str, part: str) -> str:
        got = self._get(key, part)
        return got[1] if got else ""

    def ending(self, key: str, part: str) -> None:
        self.store.set_send_mark(key, part, "ending", self.clock.now())

    def sent(self, key: str, part: str, detail: str = "") -> None:
        self.store.set_send_mark(key, part, "sent", self.clock.now(), detail)

    def forget(self, key: str, part: str) -> None:
        self.store.set_send_mark(key, part, None, self.clock.now())
