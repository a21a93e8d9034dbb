"""Rehearse a playbook: the whole timeline, offsets compressed, every action into a private outbox.

A drill builds its own engine on a throwaway store with every sink replaced by an outbox folder, so it
cannot reach a customer or the real ledger, whatever the config says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from continuity.clock import ManualClock
from continuity.config.loader import LoadedConfig, SinkInstance
from continuity.durations import format_duration
from continuity.engine import Engine
from continuity.runner import StepResult
from continuity.sinks import sink_class
from continuity.store.sqlite import SqliteStore


@dataclass
class DrillLine:
    offset: timedelta
    step: str
    action: str
    sink: str
    state: str
    text: str


@dataclass
class DrillResult:
    directory: Path
    situation_id: int
    lines: list[DrillLine] = field(default_factory=list)


def default_duration(loaded: LoadedConfig, channel: str) -> timedelta:
    """Long enough to see every timed step and two rounds of every reminder."""
    horizon = timedelta(hours=1)
    for step in loaded.playbook_for(channel).steps:
        horizon = max(horizon, step.after + (2 * step.every if step.every else timedelta(0)) + timedelta(minutes=5))
    return horizon


def run_drill(loaded: LoadedConfig, channel: str, directory: Path, *, start: datetime, speed: float,
              duration: timedelta | None, reason: str, eta: timedelta | None, playbook: str | None,
              emit: Callable[[DrillLine], None]) -> DrillResult:
    directory.mkdir(parents=True, exist_ok=True)
    outbox = sink_class("outbox")
    private = {
        name: SinkInstance(name, outbox,
                           outbox.Settings.model_validate({"directory": str(directory / "outbox" / name)}))
        for name in loaded.sinks
    }
    clock = ManualClock(start)
    store = SqliteStore(directory / "drill.db")
    engine = Engine(loaded, store, clock, sink_instances=private)
    end = start + (duration or default_duration(loaded, channel))
    opened = engine.open(channel, reason=reason, eta=eta, by="drill", source="drill", playbook=playbook)
    result = DrillResult(directory, opened.situation.id)

    def record(results: list[StepResult]) -> None:
        for r in results:
            path = Path(r.detail)
            line = DrillLine(clock.now() - start, r.row.step_id,
                             "switch off" if r.row.phase == "undo" else r.row.action,
                             r.row.sink, r.state, path.name if path.suffix in (".eml", ".json") else r.detail)
            result.lines.append(line)
            emit(line)

    record(engine.run_due([opened.situation.id], inline=False))
    while True:
        nxt = store.next_due()
        if nxt is None or nxt > end:
            break
        _wait(nxt - clock.now(), speed)
        clock.set(max(nxt, clock.now()))
        record(engine.run_due([opened.situation.id], inline=False))
    _wait(end - clock.now(), speed)
    clock.set(max(end, clock.now()))
    engine.close(channel, by="drill", note="end of drill")
    record(engine.run_due([opened.situation.id], inline=False))
    store.close()
    return result


def _wait(delta: timedelta, speed: float) -> None:
    if speed > 0 and delta.total_seconds() > 0:
        time.sleep(delta.total_seconds() / speed)


def format_line(line: DrillLine) -> str:
    return (f"+{format_duration(line.offset):>8}  {line.action:<10} {line.step:<22} → {line.sink:<12} "
            f"{line.state:<8} {line.text}")
