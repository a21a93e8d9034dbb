"""The engine decides: it opens, updates and closes situations, plans their steps into the ledger, claims
due steps for the runner and records what happened. The CLI, the daemon and drills all call this.

Every action is written to the ledger as `planned` before it runs and marked `running` in the same
transaction that claims it, so after a crash the ledger says exactly what may have happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from continuity import limits
from continuity.clock import Clock
from continuity.config.loader import LoadedConfig, SinkInstance
from continuity.config.models import Playbook, StepSpec
from continuity.errors import InputError, OperationFailed
from continuity.notes import UNSURE_TEMPLATE
from continuity.owners import current_owner, owner_alive
from continuity.retry import next_retry
from continuity.sinks.base import Action, Outcome
from continuity.store.records import SituationRecord, StepRecord
from continuity.store.sqlite import SqliteStore

if TYPE_CHECKING:
    # The runner brings jinja2 and asyncio: imported where steps run, so `status` and friends start fast.
    from continuity.runner import StepResult
    from continuity.templating import TemplateCatalog

APPLIED = ("done", "uncertain", "running")
# Situations of a campaign are scoped to the campaign, not to one channel: `campaign:<name>`.
CAMPAIGN_SCOPE = "campaign:"
# ... and a vantage's monitoring situation (the daemon's, when a remote site goes silent) `vantage:<name>`.
VANTAGE_SCOPE = "vantage:"
# A row run this long after its due time is marked late (cron-driven `tick` runs every minute or so).
LATE_AFTER = timedelta(minutes=2)
# An ETA that moves less than this is not news: typing `--eta 2h` again a few minutes later must not
# re-announce to every customer.
ETA_TOLERANCE = timedelta(minutes=10)
# The staff message that says a step's outcome is unknown and how to settle it (continuity.notes names it).
UNSURE_STEP = "step-uncertain"


def anchored_due(step: StepSpec, opened: datetime, anchors: dict[str, datetime | None] | None) -> datetime | None:
    """When a step of a newly opened situation is due: `after` its opening, or `after` its `at:` moment."""
    if step.at is None:
        return opened + step.after
    if anchors is None or step.at not in anchors:
        raise InputError(f"step {step.id!r} runs at the {step.at!r} moment, which only a campaign has; "
                         "register a campaign that uses this playbook instead")
    moment = anchors[step.at]
    return None if moment is None else moment + step.after


# Situation data a person may change on an open outage: what customers read about why (the prepared cause,
# and whether and in which language the staff's reason is shown).
CUSTOMER_FIELDS = ("cause", "public_reason", "reason_locale")
# Where a person types the ETA (the CLI, the HTTP API, the console): one already over is refused there.
PERSON_SOURCES = ("cli", "http", "console")


@dataclass
class OpenResult:
    situation: SituationRecord
    created: bool
    eta_changed: bool = False
    reason_changed: bool = False
    planned: list[StepRecord] = field(default_factory=list)
    results: list[StepResult] = field(default_factory=list)


@dataclass
class CloseResult:
    situation: SituationRecord | None
    closed: bool
    results: list[StepResult] = field(default_factory=list)


class Engine:
    def __init__(self, loaded: LoadedConfig, store: SqliteStore, clock: Clock,
                 *, sink_instances: dict[str, SinkInstance] | None = None) -> None:
        self.loaded = loaded
        self.store = store
        self.clock = clock
        self.sink_instances = sink_instances if sink_instances is not None else loaded.sinks
        self.owner = current_owner()
        self._catalog: TemplateCatalog | None = None
        # Rows due before this moment were missed while nobody ran them (the daemon sets its start time):
        # they are late however little time has passed since.
        self.late_before: datetime | None = None

    @property
    def catalog(self) -> TemplateCatalog:
        """The templates, compiled once per engine: the daemon runs steps many times a day and must not compile
        every template again each time (that was most of the delay between an outage opening and its banner)."""
        if self._catalog is None:
            from continuity.templating import TemplateCatalog

            self._catalog = TemplateCatalog(self.loaded)
        return self._catalog

    # planning ---------------------------------------------------------------------------------------------

    def check_channel(self, channel: str) -> None:
        """InputError unless `channel` is configured (or a campaign's scope)."""
        if channel.startswith((CAMPAIGN_SCOPE, VANTAGE_SCOPE)):  # a campaign's surge spans channels: its scope
            return                                                # is the campaign (a silent site's: the site)
        if channel not in self.loaded.config.channels:
            known = ", ".join(self.loaded.config.channels)
            raise InputError(f"unknown channel {channel!r}; configured channels: {known}")

    def playbook(self, situation: SituationRecord) -> Playbook:
        pb = self.loaded.channel_playbooks.get(situation.channel)
        if pb is not None and pb.name == situation.playbook:
            return pb
        return self.playbook_named(situation.playbook)

    def playbook_named(self, name: str) -> Playbook:
        """A playbook by name, loaded from the search path on first use (maintenance, plan B, …)."""
        if name not in self.loaded.playbooks:
            from continuity.config.loader import load_playbook

            self.loaded.playbooks[name], self.loaded.documents[name] = load_playbook(name, self.loaded.playbook_dirs)
        return self.loaded.playbooks[name]

    def _targets(self, situation_id: int, step: StepSpec) -> list[str]:
        """The step's sinks; a staff message also goes to the routes the situation names in `also_staff` (a
        campaign's `brief.to`: whoever is briefed hears every later staff message too)."""
        targets = list(self.loaded.targets(step))
        if step.audience == "staff":
            sit = self.store.get_situation(situation_id)
            for route in (sit.data.get("also_staff") or []) if sit is not None else []:
                if route in self.loaded.routes or route in self.loaded.sinks:
                    targets += self.loaded.targets(step.model_copy(update={"to": route}))
        return list(dict.fromkeys(targets))

    def _plan(self, situation_id: int, phase: str, step: StepSpec, occurrence: int, due: datetime,
              tag: str | int | None = None) -> list[int]:
        ids = []
        for sink_name in self._targets(situation_id, step):
            inst = self.sink_instances[sink_name]
            key = f"s{situation_id}/{phase}/{step.id}/{tag if tag is not None else occurrence}/{sink_name}"
            row_id = self.store.insert_step(
                situation_id=situation_id, key=key, phase=phase, step_id=step.id, occurrence=occurrence,
                action=step.action, sink=sink_name, template=step.template, reversible=step.reversible,
                idempotent=inst.cls.idempotent,
                every_s=int(step.every.total_seconds()) if step.every else None, due_at=due,
            )
            if row_id is not None:
                ids.append(row_id)
        return ids

    def _went_out(self, situation_id: int, step_id: str) -> bool:
        return any(r.step_id == step_id and r.state in ("done", "uncertain", "undone")
                   for r in self.store.steps_for(situation_id))

    # open / update ------------------------------------------------------------------------------------------

    def open(self, channel: str, *, reason: str, eta: timedelta | datetime | None = None, by: str,
             source: str = "cli", kind: str = "outage", playbook: str | None = None,
             data: dict[str, Any] | None = None,
             anchors: dict[str, datetime | None] | None = None) -> OpenResult:
        """Open an outage of a channel, or update the one already open (idempotent).

        `anchors` are the named moments steps with `at:` run at (a campaign's launch and reminder); a moment
        given as None skips those steps."""
        self.check_channel(channel)
        limits.check_length("reason", reason, limits.REASON)
        limits.check_length("by", by, limits.BY)
        if not reason.strip():
            raise InputError("a reason is required: say what broke")
        pb = self.playbook_named(playbook) if playbook else self.loaded.channel_playbooks[channel]
        now = self.clock.now()
        eta_at = now + eta if isinstance(eta, timedelta) else eta
        if eta_at is not None and eta_at <= now and source in PERSON_SOURCES:
            # a person's ETA already over would tell customers "back by" a time gone by
            raise InputError(f"eta {eta_at.isoformat(timespec='minutes')} is in the past: give the time the "
                             "channel is expected back")
        self.recover()
        with self.store.transaction():
            existing = self.store.find_open(kind, channel)
            if existing is None:
                sid = self.store.insert_situation(kind=kind, channel=channel, playbook=pb.name, source=source,
                                                  opened_by=by, reason=reason, eta=eta_at, opened_at=now, data=data)
                self.store.add_event(sid, now, "opened",
                                     f"{kind} of {channel} opened by {by} ({source}): {reason}"
                                     + (f"; ETA {eta_at.isoformat()}" if eta_at else ""))
                for step in pb.steps:
                    due = anchored_due(step, now, anchors)
                    if due is not None:
                        self._plan(sid, "open", step, 1, due)
                situation = self.store.get_situation(sid)
                assert situation is not None
                return OpenResult(situation, created=True, planned=self.store.steps_for(sid))
            told = {k: v for k, v in (data or {}).items() if k in CUSTOMER_FIELDS}
            if any(existing.data.get(k) != v for k, v in told.items()):  # a new cause for customers
                self.store.update_situation(existing.id, data={**existing.data, **told})
                existing = self.store.get_situation(existing.id) or existing
            return self._update(existing, reason, eta_at, by, now)

    def _update(self, sit: SituationRecord, reason: str, eta: datetime | None, by: str, now: datetime) -> OpenResult:
        eta_changed = eta is not None and (sit.eta is None or abs(eta - sit.eta) > ETA_TOLERANCE)
        reason_changed = reason != sit.reason
        if reason_changed:
            self.store.update_situation(sit.id, reason=reason)
            self.store.add_event(sit.id, now, "updated", f"reason changed by {by}: {reason}")
        if eta_changed:
            revision = sit.revision + 1
            self.store.update_situation(sit.id, eta=eta, revision=revision)
            assert eta is not None
            self.store.add_event(sit.id, now, "eta", f"ETA changed by {by} to {eta.isoformat()}")
            pb = self.playbook(sit)
            for step in pb.on_update:
                if step.only_if and not self._went_out(sit.id, step.only_if):
                    continue
                self._plan(sit.id, "update", step, revision, now, tag=f"rev{revision}")
            self._refresh(sit, revision, now)
        updated = self.store.get_situation(sit.id)
        assert updated is not None
        return OpenResult(updated, created=False, eta_changed=eta_changed, reason_changed=reason_changed,
                          planned=[r for r in self.store.steps_for(sit.id) if r.state == "planned"])

    def _refresh(self, sit: SituationRecord, revision: int, now: datetime) -> None:
        """Re-apply the customer-facing notices and banners already switched on, so they show what changed."""
        refreshed: set[tuple[str, str]] = set()
        specs = {s.id: s for s in self.playbook(sit).steps}
        for row in self.store.steps_for(sit.id):
            if row.reversible and row.state == "done" and row.phase in ("open", "update") \
                    and (row.step_id, row.sink) not in refreshed and row.step_id in specs:
                refreshed.add((row.step_id, row.sink))
                spec = specs[row.step_id].model_copy(update={"to": row.sink})
                self._plan(sit.id, "update", spec, revision, now, tag=f"refresh{revision}")

    def refresh(self, situation_id: int, why: str) -> None:
        """A new revision of an open situation's notices without an ETA change (a maintenance window began)."""
        now = self.clock.now()
        with self.store.transaction():
            sit = self.store.get_situation(situation_id)
            if sit is None or not sit.is_open:
                return
            self.store.update_situation(sit.id, revision=sit.revision + 1)
            self.store.add_event(sit.id, now, "refreshed", why)
            self._refresh(sit, sit.revision + 1, now)

    def reanchor(self, situation_id: int, anchors: dict[str, datetime | None]) -> None:
        """Move the planned `at:` steps of an open situation to new moments (a campaign's dates moved); a step
        whose moment is gone is skipped, never run late."""
        now = self.clock.now()
        with self.store.transaction():
            sit = self.store.get_situation(situation_id)
            if sit is None or not sit.is_open:
                return
            specs = {s.id: s for s in self.playbook(sit).steps if s.at is not None}
            for row in self.store.steps_for(sit.id):
                spec = specs.get(row.step_id)
                if spec is None or row.phase != "open" or row.state != "planned":
                    continue
                due = anchored_due(spec, sit.opened_at, anchors)
                if due is None:
                    self.store.set_step(row.id, expect=("planned",), state="skipped", finished_at=now,
                                        detail="skipped: the campaign moved and this moment is no longer ahead")
                else:
                    self.store.set_step(row.id, expect=("planned",), due_at=due)

    # close ----------------------------------------------------------------------------------------------------

    def close(self, channel: str, *, by: str, note: str | None = None, kind: str = "outage") -> CloseResult:
        """Close the open situation of a channel: cancel what has not run, switch off what was switched on,
        then run the playbook's close steps."""
        self.check_channel(channel)
        limits.check_length("note", note, limits.NOTE)
        limits.check_length("by", by, limits.BY)
        now = self.clock.now()
        self.recover()
        with self.store.transaction():
            sit = self.store.find_open(kind, channel)
            if sit is None:
                return CloseResult(None, closed=False)
            self.store.update_situation(sit.id, state="closed", closed_at=now, closed_by=by, note=note)
            self.store.add_event(sit.id, now, "closed", f"closed by {by}" + (f": {note}" if note else ""))
            rows = self.store.steps_for(sit.id)
            for row in rows:
                if row.state == "planned" or row.awaiting_retry:
                    self.store.set_step(row.id, expect=("planned", "failed"), state="cancelled", finished_at=now,
                                        detail="cancelled: the situation closed before it ran")
            latest: dict[tuple[str, str], StepRecord] = {}
            for row in rows:
                if row.reversible and row.phase in ("open", "update") and (
                        row.state in APPLIED or (row.state == "failed" and row.attempts > 0)):
                    latest[(row.step_id, row.sink)] = row
            for (step_id, sink_name), row in latest.items():
                self.store.insert_step(
                    situation_id=sit.id, key=f"s{sit.id}/undo/{step_id}/{sink_name}", phase="undo",
                    step_id=step_id, occurrence=1, action=row.action, sink=sink_name, template=row.template,
                    reversible=False, idempotent=row.idempotent, every_s=None, due_at=now, undo_of=row.id,
                )
            closed = self.store.get_situation(sit.id)
            assert closed is not None
            for step in self.playbook(closed).on_close:
                if step.only_if and not self._went_out(sit.id, step.only_if):
                    self.store.add_event(sit.id, now, "skipped",
                                         f"{step.id} skipped: {step.only_if} never went out")
                    continue
                self._plan(sit.id, "close", step, 1, now)
            return CloseResult(closed, closed=True)

    def note(self, situation_id: int, step_id: str, template: str, *, to: str = "staff") -> list[int]:
        """Plan a one-off message about an open situation (the daemon telling staff a channel looks healthy
        or is flapping). Each call is a new message; it runs with the next due steps."""
        from continuity.config.models import StepSpec

        now = self.clock.now()
        with self.store.transaction():
            n = 1 + len({r.occurrence for r in self.store.steps_for(situation_id)
                         if r.phase == "note" and r.step_id == step_id})
            step = StepSpec(id=step_id, action="notify", to=to, template=template)
            self.store.add_event(situation_id, now, "note", f"{step_id} planned")
            return self._plan(situation_id, "note", step, n, now)

    # running ----------------------------------------------------------------------------------------------------

    def recover(self) -> list[StepRecord]:
        """Rows left `running` by a process that died: re-run idempotent ones, flag the others `uncertain`."""
        stale = [r for r in self.store.running_steps() if not owner_alive(r.owner)]
        if not stale:
            return []
        now = self.clock.now()
        with self.store.transaction():
            for row in stale:
                if row.idempotent:
                    self.store.set_step(row.id, expect=("running",), state="planned", owner=None,
                                        detail="interrupted by a crash; will run again (the sink is idempotent)")
                else:
                    self.store.set_step(row.id, expect=("running",), state="uncertain", owner=None, finished_at=now,
                                        last_error="interrupted by a crash while sending: it may or may not have "
                                                   "gone out; check, then `continuity settle ID sent|resend`")
                    self.store.add_event(row.situation_id, now, "uncertain",
                                         f"{row.step_id} → {row.sink}: outcome unknown after a crash")
                    self._tell_unsure(row, now)
        return stale

    def claim_due(self, situation_ids: Sequence[int] | None = None) -> list[StepRecord]:
        """Mark every due row `running` (owned by this process) and plan the next run of repeating steps."""
        now = self.clock.now()
        claimed = []
        with self.store.transaction():
            for row in self.store.due_steps(now, situation_ids):
                late = row.state == "planned" and ((now - row.due_at) > LATE_AFTER or (
                    self.late_before is not None and row.due_at < self.late_before))
                if not self.store.set_step(row.id, expect=("planned", "failed"), state="running", owner=self.owner,
                                           started_at=now, attempts=row.attempts + 1, late=late or row.late):
                    continue
                if row.every_s and row.phase == "open":
                    step_due = row.due_at + timedelta(seconds=row.every_s)
                    while step_due <= now:  # a long gap sends one reminder now, not a burst of missed ones
                        step_due += timedelta(seconds=row.every_s)
                    self.store.insert_step(
                        situation_id=row.situation_id,
                        key=row.key.rsplit("/", 2)[0] + f"/{row.occurrence + 1}/{row.sink}",
                        phase=row.phase, step_id=row.step_id, occurrence=row.occurrence + 1, action=row.action,
                        sink=row.sink, template=row.template, reversible=row.reversible, idempotent=row.idempotent,
                        every_s=row.every_s, due_at=step_due,
                    )
                claimed_row = self.store.get_step(row.id)
                assert claimed_row is not None
                claimed.append(claimed_row)
        return claimed

    def action_as_ran(self, row: StepRecord) -> Action:
        """The action a step's sink received, rendered again as of the moment it ran (so /banner.json says
        the words the banner file got). Renders only: nothing is claimed, recorded or sent."""
        from continuity.clock import ManualClock
        from continuity.runner import Runner

        replay = Engine(self.loaded, self.store, ManualClock(row.started_at or row.due_at),
                        sink_instances=self.sink_instances)
        replay._catalog = self.catalog  # the same compiled templates
        return Runner(replay).build_action(row)

    def reclaim(self, row: StepRecord) -> StepRecord | None:
        """Take a failed row back for an inline retry, unless it was cancelled or taken meanwhile."""
        with self.store.transaction():
            if not self.store.set_step(row.id, expect=("failed",), state="running", owner=self.owner,
                                       attempts=row.attempts + 1, started_at=self.clock.now()):
                return None
            return self.store.get_step(row.id)

    def record_outcome(self, row: StepRecord, outcome: Outcome) -> tuple[StepRecord, str, timedelta | None]:
        """Write a sink's outcome to the ledger; return the row, its new state and the retry delay if any."""
        now = self.clock.now()
        policy = self.loaded.config.retry
        delay: timedelta | None = None
        with self.store.transaction():
            if outcome.ok:
                state = "done"
                self.store.set_step(row.id, expect=("running",), state="done", finished_at=now,
                                    owner=None, detail=outcome.detail[:2000], next_retry_at=None)
                if row.phase == "undo" and row.undo_of is not None:
                    for other in self.store.steps_for(row.situation_id):
                        if other.step_id == row.step_id and other.sink == row.sink and other.phase != "undo" \
                                and other.state in ("done", "uncertain"):
                            # finished_at stays the time it went on: the undo row records the switch-off
                            self.store.set_step(other.id, state="undone")
            elif outcome.status == "uncertain":
                state = "uncertain"
                self.store.set_step(row.id, expect=("running",), state="uncertain", owner=None, finished_at=now,
                                    last_error=outcome.detail[:2000], next_retry_at=None)
                self.store.add_event(row.situation_id, now, "uncertain",
                                     f"{row.step_id} → {row.sink}: {outcome.detail}")
                self._tell_unsure(row, now)
            else:
                state = "failed"
                delay = next_retry(policy, row.attempts, outcome)
                self.store.set_step(row.id, expect=("running",), state="failed", owner=None,
                                    last_error=outcome.detail[:2000],
                                    next_retry_at=now + delay if delay is not None else None,
                                    finished_at=None if delay is not None else now)
                if delay is None:
                    self.store.add_event(row.situation_id, now, "failed",
                                         f"{row.step_id} → {row.sink} failed after {row.attempts} attempt(s): "
                                         f"{outcome.detail}")
        updated = self.store.get_step(row.id)
        assert updated is not None
        return updated, state, delay

    def _tell_unsure(self, row: StepRecord, now: datetime) -> None:
        """Tell staff once that a message may or may not have gone out, and how to settle it. Not for a staff
        message about uncertainty itself (that would tell them again about telling them)."""
        if row.step_id == UNSURE_STEP:
            return
        sit = self.store.get_situation(row.situation_id)
        if sit is None:
            return
        unsure = list(sit.data.get("unsure") or [])
        if any(u.get("id") == row.id for u in unsure):
            return
        unsure.append({"id": row.id, "step": row.step_id, "sink": row.sink})
        self.store.update_situation(sit.id, data={**sit.data, "unsure": unsure})
        from continuity.config.models import StepSpec

        staff = StepSpec(id=UNSURE_STEP, action="notify", to="staff", template=UNSURE_TEMPLATE)
        if all(t in self.sink_instances for t in self._targets(sit.id, staff)):  # a config with no staff route
            self.note(sit.id, UNSURE_STEP, UNSURE_TEMPLATE)

    async def run_due_async(self, situation_ids: Sequence[int] | None = None, inline: bool = True) -> list[StepResult]:
        from continuity.runner import Runner

        runner = Runner(self)
        try:
            results: list[StepResult] = []
            # Running close steps can make undo rows due (an undo waits for its target), so loop until quiet.
            for _ in range(5):
                rows = self.claim_due(situation_ids)
                if not rows:
                    break
                results.extend(await runner.run(rows, inline=inline))
            return results
        finally:
            await runner.aclose()

    def run_due(self, situation_ids: Sequence[int] | None = None, inline: bool = True) -> list[StepResult]:
        """Run what is due now (of these situations, or of all). Time-driven openings and closings (maintenance
        windows, campaign phases) are continuity.triggers' job, called by `tick` and the daemon first."""
        self.recover()
        import asyncio

        return asyncio.run(self.run_due_async(situation_ids, inline))


def failures(results: list[StepResult]) -> list[StepResult]:
    return [r for r in results if r.state in ("failed", "uncertain")]


def raise_if_failed(results: list[StepResult]) -> None:
    bad = failures(results)
    if bad:
        raise OperationFailed("; ".join(f"{r.row.step_id} → {r.row.sink}: {r.detail}" for r in bad))


def summary(results: list[StepResult]) -> dict[str, Any]:
    return {"ran": len(results), "failed": len(failures(results))}
