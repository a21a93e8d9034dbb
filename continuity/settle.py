"""The operator's word on a step: a crash left it `uncertain` (did it go out?), or its retries ran out and it
should be sent again. Both change the ledger only; the caller runs what became due."""

from __future__ import annotations

from typing import TYPE_CHECKING

from continuity.errors import InputError
from continuity.store.records import StepRecord

if TYPE_CHECKING:
    from continuity.engine import Engine


def confirm(engine: Engine, step_row_id: int, *, sent: bool, by: str) -> StepRecord:
    """The operator settles an `uncertain` step: it went out (done) or it did not (run it again)."""
    row = engine.store.get_step(step_row_id)
    if row is None:
        raise InputError(f"no step with id {step_row_id}")
    if row.state != "uncertain":
        raise InputError(f"step {step_row_id} is {row.state}, not uncertain")
    now = engine.clock.now()
    with engine.store.transaction():
        # The parts a sink left at its point of no return (an e-mail recipient whose final dot got no reply)
        # take the same word: sent, or forgotten so the resend covers exactly them.
        engine.store.settle_send_marks(row.key, sent, now)
        if sent:
            engine.store.set_step(row.id, expect=("uncertain",), state="done", finished_at=now,
                                  detail=f"confirmed sent by {by}")
        else:
            engine.store.set_step(row.id, expect=("uncertain",), state="failed", next_retry_at=now,
                                  last_error=f"confirmed not sent by {by}; sending again")
        engine.store.add_event(row.situation_id, now, "confirmed",
                               f"{row.step_id} → {row.sink} confirmed {'sent' if sent else 'not sent'} by {by}")
    updated = engine.store.get_step(row.id)
    assert updated is not None
    return updated


def retry(engine: Engine, step_row_id: int, *, by: str) -> StepRecord:
    """The operator sends a failed step again, with a fresh round of retries (X was down longer than the
    backoff lasted). A customer-facing step of a closed situation is not sent: it would announce an outage
    that is over; its close messages and switch-offs still can be."""
    row = engine.store.get_step(step_row_id)
    if row is None:
        raise InputError(f"no step with id {step_row_id}")
    if row.state != "failed":
        raise InputError(f"step {step_row_id} is {row.state}; only a failed step can be sent again")
    sit = engine.store.get_situation(row.situation_id)
    if sit is not None and not sit.is_open and row.phase not in ("close", "undo"):
        raise InputError(f"situation #{sit.id} is closed: sending {row.step_id!r} now would tell people about "
                         "something that is over")
    now = engine.clock.now()
    with engine.store.transaction():
        engine.store.set_step(row.id, expect=("failed",), attempts=0, next_retry_at=now,
                              last_error=f"{row.last_error or 'failed'}; sent again by {by}")
        engine.store.add_event(row.situation_id, now, "retry", f"{row.step_id} → {row.sink} sent again by {by}")
    updated = engine.store.get_step(row.id)
    assert updated is not None
    return updated
