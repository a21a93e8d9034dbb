"""The daemon's loop: a probe job per channel, a job per pending ledger row at its due time, and the
reactions to health changes. It decides nothing itself: outages are opened and closed through the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from continuity import owners, triggers
from continuity.autoreply.supervisor import Supervisor
from continuity.checks import ChannelCheck, ProbeSet
from continuity.clock import Clock
from continuity.cluster import seat_for
from continuity.config.loader import LoadedConfig
from continuity.daemon.metrics import Metrics
from continuity.daemon.surge import SurgeMonitor
from continuity.engine import Engine
from continuity.logs import event
from continuity.notes import DAEMON_TEMPLATES
from continuity.probes.health import ChannelHealth
from continuity.probes.heartbeat import Heard
from continuity.quorum import (
    Observation,
    Quorum,
    channel_vantages,
    monitoring_back,
    monitoring_forgotten,
    monitoring_lost,
    needs_quorum,
    silent_vantages,
)
from continuity.runner import StepResult
from continuity.store.records import SharedObservation
from continuity.store.sqlite import SqliteStore
from continuity.store.times import ts

# Rows planned by other processes (a person's `continuity outage`) are picked up this often; their steps
# still run at their exact due times.
RESYNC_EVERY = 5.0
STOP_GRACE = 8.0
# How often a node of a cluster tries to lead (or, leading, renews its lease): a killed leader's lock is gone
# at once, so its successor leads within about this long.
CLUSTER_POLL = 1.0



def raise_file_limit() -> int:
    """Lift the soft open-files limit to the hard one: each http probe keeps its own connection open, and the
    common default of 1,024 would run out near a thousand probes. Returns the limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class Daemon:
    def __init__(self, loaded: LoadedConfig, store: SqliteStore, clock: Clock, log: logging.Logger,
                 bind: str | None = None, node: str | None = None) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        if node is not None:  # `daemon --node`: this node's name (and default vantage) for every part below
            daemon = loaded.config.daemon.model_copy(update={"node": node})
            loaded.config = loaded.config.model_copy(update={"daemon": daemon})
        self.loaded = loaded
        self.bind = bind or loaded.config.daemon.bind
        self.store = store
        self.clock = clock
        self.log = log
        self.engine = Engine(loaded, store, clock)
        self.node = loaded.config.daemon.node_name
        self.vantage = loaded.config.daemon.vantage_name
        # Leading: this node runs the scheduler's decisions and sends. A SQLite store's daemon always leads; on
        # PostgreSQL the seat says (cluster.py), and a follower only probes and serves.
        self.seat = seat_for(store, self.node, self.vantage, loaded.config.cluster.failover)
        self.clustered = bool(getattr(self.seat, "clustered", False))
        self.leading = not self.clustered  # a store of its own: it leads from the start
        self.epoch: int | None = None
        self.led_since: datetime | None = None
        self.heard = Heard(clock.now())  # agents' posts and plain pings: the heartbeat probes read it
        self.silenced: set[str] | None = None  # vantages whose monitoring situation is open (from the store)
        self.probes = ProbeSet(loaded, clock, vantage=self.vantage, heard=self.heard)
        self.surge = SurgeMonitor(loaded, self.engine, store, clock, log)
        self.health = {ch: ChannelHealth(spec.health) for ch, spec in loaded.config.channels.items()
                       if spec.health is not None and ch in loaded.probes}
        # Channels seen from several vantages: each vantage keeps its own hysteresis in its Quorum, and the
        # channel's health is fed the vote (so it goes down or back on the vote alone, flapping still judged).
        self.quorums: dict[str, Quorum] = {}
        for ch, h in self.health.items():
            if needs_quorum(h.spec, self.vantage):
                self.quorums[ch] = Quorum(h.spec, channel_vantages(h.spec, self.vantage), clock.now())
                h.spec = h.spec.model_copy(update={"fail_after": 1, "recover_after": 1})
        self.metrics = Metrics()
        self.autoreply = Supervisor(loaded, store, clock, log, self.metrics.registry)
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.stopping = asyncio.Event()
        self.started_at: datetime | None = None
        self.last_check: dict[str, ChannelCheck] = {}
        self.last_cycle_at: dict[str, datetime] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        self._in_steps: set[asyncio.Task[Any]] = set()  # jobs inside run_steps: a stop lets them finish
        self._step_jobs: set[str] = set()
        self._cycling: set[str] = set()  # channels whose probe cycle is running now
        self._cycle_due: set[str] = set()  # ... and whose next cycle fell due meanwhile
        self._warming: asyncio.Future[int] | None = None
        self._store_error: str | None = None
        self._outgoing: list[SharedObservation] = []  # what this node saw, for the leader (cluster_poll)

    # lifecycle -------------------------------------------------------------------------------------------------

    async def run(self, serve: bool = True) -> None:
        raise_file_limit()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        http = None
        try:
            await self.start()
            if serve:
                from continuity.daemon.http import serve as serve_http

                http = await serve_http(self)
            await self.stopping.wait()
        finally:
            await self.stop()
            if http is not None:
                await http.cleanup()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def start(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        self.started_at = self.clock.now()
        clustered = getattr(self.seat, "clustered", False)
        watched = (f"watching {len(self.health)} channel(s)" if self.health or self.surge.watches else
                   "nothing is watched: add `health` to a channel (the daemon still runs due steps and serves "
                   "its pages)")
        event(self.log, "daemon.start", watched + (
              f" as node {self.node} of a cluster; leads when no other node does" if clustered else ""),
              channels=list(self.health), node=self.node)
        self.scheduler.start()
        now = datetime.now(UTC)
        for ch, h in self.health.items():
            # Two instances: the second only notes that a cycle is due while the first overruns (never skipped).
            self.scheduler.add_job(self._job(self.probe_job, ch),
                                   IntervalTrigger(seconds=h.spec.every.total_seconds()), id=f"probe-{ch}",
                                   next_run_time=now, max_instances=2, coalesce=True, misfire_grace_time=None)
        self.scheduler.add_job(self._job(self.resync), IntervalTrigger(seconds=RESYNC_EVERY), id="resync",
                               max_instances=1, coalesce=True, misfire_grace_time=None)
        self.surge.resume()
        for ch in self.surge.watches:
            every = self.surge.reader.spec(ch).every.total_seconds()
            self.scheduler.add_job(self._job(self.surge_cycle, ch), IntervalTrigger(seconds=every), id=f"surge-{ch}",
                                   next_run_time=now, max_instances=1, coalesce=True, misfire_grace_time=None)
        if clustered:
            self.scheduler.add_job(self._job(self.cluster_poll), IntervalTrigger(seconds=CLUSTER_POLL), id="cluster",
                                   next_run_time=now, max_instances=1, coalesce=True, misfire_grace_time=None)
        else:
            await self.lead(None)
        self._warming = asyncio.ensure_future(asyncio.to_thread(self.warm_up))

    # leading -------------------------------------------------------------------------------------------------

    async def cluster_poll(self) -> None:
        """Try to lead, or renew the lease while leading (pg_cluster.Leadership); act on what changed."""
        outgoing, self._outgoing = self._outgoing, []
        epoch = await asyncio.to_thread(self.seat.poll, outgoing)
        # What leading sets off (recovery, late steps, votes and their sends) runs beside the poll, never in
        # it: a poll that waited for a slow send would stop renewing the lease and look frozen to the others.
        if self.leading and epoch is not None and epoch == self.epoch and self.seat.incoming:
            self._spawn(self.take_in, list(self.seat.incoming))
        if epoch is not None and (not self.leading or epoch != self.epoch):
            self.seize(epoch)  # at once: no step is claimed without the epoch, no second lead() starts
            self._spawn(self.lead, epoch)
        elif epoch is None and self.leading:
            await self.follow(self.seat.last_error)
        elif epoch is None and self.seat.last_error and self._store_error != self.seat.last_error:
            event(self.log, "cluster.store", f"cannot reach the store to compete for the lead: "
                  f"{self.seat.last_error}", logging.WARNING, node=self.node)
        self._store_error = self.seat.last_error
        self.metrics.observe_cluster(self.node, self.leading, self.seat.nodes_alive)

    def share(self, vantage: str, channel: str, status: str, reason: str, results: list[dict[str, Any]]) -> None:
        """In a cluster, what this node saw (its own probes, an agent's report it took, a ping) goes to the
        store with its node name, for the leader's votes: every node is a vantage, whichever one leads."""
        if self.clustered:
            self._outgoing.append(SharedObservation(self.node, vantage, channel, status, reason, results,
                                                    self.clock.now()))

    async def take_in(self, shared: list[SharedObservation]) -> None:
        """The leader counts the other nodes' observations as their vantages' reports, then votes again."""
        changed: dict[str, str] = {}
        for ob in shared:
            last = self.heard.last(ob.vantage)
            if last is None or ob.at > last:
                self.heard.hear(ob.vantage, ob.at)
                await self.monitoring_restored(ob.vantage)
            quorum = self.quorums.get(ob.channel)
            if quorum is not None and ob.vantage != self.vantage and ob.vantage in quorum.views:
                quorum.observe(ob.vantage, ob.status, ob.reason, ob.results, ob.at)  # type: ignore[arg-type]
                changed[ob.channel] = ob.vantage
        for channel, vantage in changed.items():
            await self.vote(channel, [], only=vantage)

    def seize(self, epoch: int | None) -> None:
        """Lead from this instant: every row claimed from now on carries the epoch in its owner."""
        owners.lead_under(epoch)
        self.engine.owner = owners.current_owner()
        self.leading, self.epoch, self.led_since = True, epoch, self.clock.now()
        self.engine.late_before = self.led_since

    async def lead(self, epoch: int | None) -> None:
        """Become the node that decides and sends: whatever fell due before now runs at once, marked late; a
        step a dead leader left running follows the crash rule (engine.recover)."""
        if self.led_since is None or not self.leading or self.epoch != epoch:
            self.seize(epoch)  # (a store of its own: at the daemon's start)
        self.silenced = None  # monitoring situations another node opened or closed meanwhile
        monitoring_forgotten(self.engine, {v for q in self.quorums.values() for v in q.views})
        for sit in self.store.open_situations():
            h = self.health.get(sit.channel)
            if h is not None and sit.kind == "outage":
                h.state = "down"  # an outage open before a restart needs recover_after passes to close
                for view in self.quorums[sit.channel].views.values() if sit.channel in self.quorums else ():
                    view.health.state = "down"
        stale = self.engine.recover()
        if epoch is not None:
            event(self.log, "cluster.leading", f"node {self.node} leads the cluster (epoch {epoch}); "
                  f"{len(stale)} interrupted step(s) recovered", node=self.node, epoch=epoch)
        elif stale:
            event(self.log, "daemon.recovered", f"{len(stale)} interrupted step(s) recovered")
        for ch, h in self.health.items():  # a channel this node saw go down while it followed
            if h.is_down and ch in self.last_check and self.store.find_open("outage", ch) is None:
                await self.react(ch, "went_down", self.last_check[ch])
        self.metrics.observe_cluster(self.node, True)
        await self.run_steps()  # steps missed while no node led (or the daemon was down) run now, marked late

    async def follow(self, why: str | None) -> None:
        """The lead is lost (another node took it, or the store cannot tell): stop deciding and sending at
        once. The store's fence already refuses this node's writes; the responders stop too."""
        self.leading, self.epoch = False, None
        owners.lead_under(None)
        self.engine.owner = owners.current_owner()
        for job_id in list(self._step_jobs):
            with contextlib.suppress(Exception):
                self.scheduler.remove_job(job_id)
        self._step_jobs.clear()
        event(self.log, "cluster.following", f"node {self.node} no longer leads" + (f": {why}" if why else
              " (another node took the lead)") + "; it sends nothing until it leads again", logging.WARNING,
              node=self.node)
        self.metrics.observe_cluster(self.node, False)
        me = asyncio.current_task()
        sending = [t for t in self._in_steps if not t.done() and t is not me]

        async def drain() -> None:  # what was being sent ends (its records are refused by the fence)
            if sending:
                _, late = await asyncio.wait(sending, timeout=STOP_GRACE)
                for task in late:
                    task.cancel()

        await asyncio.gather(drain(), self.autoreply.stop(STOP_GRACE))
        # Nothing of the lead runs any more: from here on this node writes only what a person asks of it
        # through the API or the console, as `continuity outage` would from any machine (unfenced).
        if getattr(self.seat, "epoch", None) is None:
            self.seat.fence.epoch = None

    def warm_up(self) -> int:
        """Compile the templates of every channel's playbook and load each locale's date formats, once, in the
        background: most outages are the first of their kind since the daemon started, and their first steps
        must not wait for that (about a third of a second on this kind of machine). Returns how many compiled."""
        from continuity.variables import human_datetime, human_duration

        catalog = self.engine.catalog
        wanted = {(template, "staff") for template in DAEMON_TEMPLATES}
        for playbook in self.loaded.channel_playbooks.values():
            wanted.update((step.template, step.audience) for _, step in playbook.all_steps())
        compiled = 0
        for template, audience in sorted(wanted):
            for locale in catalog.locales_for(audience):
                rel = catalog.find(template, locale)
                try:
                    if rel is not None:
                        catalog.env.get_template(rel)  # cached by the environment the catalog renders with
                        compiled += 1
                except Exception:  # noqa: S112 (a broken template is reported when its step runs)
                    continue
        tz = self.loaded.config.organisation.timezone
        for locale in {*catalog.locales, catalog.staff_locale}:
            try:
                human_duration(timedelta(hours=1, minutes=5), locale)
                human_datetime(self.clock.now(), locale, tz)
            except Exception:  # noqa: S112 (only a head start; a real step reports its own error)
                continue
        return compiled

    async def stop(self) -> None:
        """Stop probing at once; let steps being sent finish (STOP_GRACE at most) together with the answers the
        auto-responder is sending; whatever is left resumes at the next start. Well within 10 s."""
        if self.scheduler.running:
            self.scheduler.pause()  # nothing new starts; what runs is finished or cancelled here
        me = asyncio.current_task()
        # Steps run from scheduler jobs and from HTTP actions alike; everything else is watching.
        sending = [t for t in self._in_steps if not t.done() and t is not me]
        watching = [t for t in self._inflight if not t.done() and t is not me and t not in self._in_steps]
        for task in watching:  # probe cycles and resyncs: their answer no longer matters
            task.cancel()

        async def finish_steps() -> None:
            if sending:
                _, late = await asyncio.wait(sending, timeout=STOP_GRACE)
                for task in late:  # its rows stay `running`: the next start re-runs or flags them
                    task.cancel()

        await asyncio.gather(finish_steps(), self.autoreply.stop(STOP_GRACE))
        if watching:
            await asyncio.wait(watching, timeout=1.0)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.probes.aclose()
        await self.surge.aclose()
        await asyncio.to_thread(self.seat.release)  # the next node leads at once, not after a failover
        event(self.log, "daemon.stop", "stopped; unfinished steps resume at the next start")

    def _spawn(self, func: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run a job's work as a task of its own (logged and stopped like every job)."""
        asyncio.ensure_future(self._job(func, *args)())

    def _job(self, func: Callable[..., Awaitable[None]], *args: Any) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            if self.stopping.is_set():
                return
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                await func(*args)
            except Exception:
                self.log.exception("job failed", extra={"event": "daemon.error", "fields": {}})
            finally:
                if task is not None:
                    self._inflight.discard(task)

        return job

    # probes and health -------------------------------------------------------------------------------------

    async def probe_job(self, channel: str) -> None:
        """Run the channel's cycle; a tick that comes while the last cycle still runs (a hanging peer, timeout
        >= every) runs right after it, so failing probes follow each other without a lost interval and a hang
        is detected at every x fail_after + timeout, not a whole interval later per failure."""
        if channel in self._cycling:
            self._cycle_due.add(channel)
            return
        self._cycling.add(channel)
        try:
            while True:
                self._cycle_due.discard(channel)
                await self.cycle(channel)
                if channel not in self._cycle_due or self.stopping.is_set():
                    return
        finally:
            self._cycling.discard(channel)

    async def cycle(self, channel: str) -> None:
        if channel in self.quorums:
            await self.quorum_cycle(channel)
            return
        check = await self.probes.check(channel)
        now = self.clock.now()
        health = self.health[channel]
        events = health.observe(check.status, check.reason, now)
        self.last_check[channel] = check
        self.last_cycle_at[channel] = now
        self.metrics.observe_check(channel, check.results, health)
        self.share(self.vantage, channel, check.status, check.reason, [r.as_dict() for r in check.results])
        for ev in events:
            await self.react(channel, ev, check)

    async def quorum_cycle(self, channel: str) -> None:
        """This node's own probes of the channel (if it runs any) count as one vantage's report; then the vote.
        Runs every `every` even with no probe here, so a vantage's silence is noticed on time."""
        quorum = self.quorums[channel]
        results: list[Any] = []
        if channel in self.probes.probes:
            check = await self.probes.check(channel)
            results = check.results
            quorum.observe(self.vantage, check.status, check.reason, [r.as_dict() for r in results],
                           self.clock.now())
            self.share(self.vantage, channel, check.status, check.reason, [r.as_dict() for r in results])
        self.last_cycle_at[channel] = self.clock.now()
        await self.vote(channel, results)

    async def observe(self, vantage: str, observations: list[Observation]) -> dict[str, Any]:
        """An agent's report (its heartbeat too): each channel's vote is taken again at once."""
        now = self.clock.now()
        accepted = 0
        for ob in observations:
            quorum = self.quorums.get(ob.channel)
            if quorum is not None and ob.vantage in quorum.views:
                quorum.observe(ob.vantage, ob.status, ob.reason, ob.results, now)
                self.share(ob.vantage, ob.channel, ob.status, ob.reason, ob.results)
                accepted += 1
        self.heard.hear(vantage, now)
        self.share(vantage, "", "up", "heard", [])
        await self.monitoring_restored(vantage)
        for channel in dict.fromkeys(ob.channel for ob in observations):
            if channel in self.quorums:
                await self.vote(channel, [], only=vantage)
        return {"accepted": accepted, "ignored": len(observations) - accepted}

    async def vote(self, channel: str, own_results: list[Any], only: str | None = None) -> None:
        quorum, health = self.quorums[channel], self.health[channel]
        now = self.clock.now()
        verdict = quorum.verdict(now)
        silent = quorum.degraded_news(verdict)
        if silent:
            await self.monitoring_degraded(channel, silent, verdict.reporting)
        check = ChannelCheck(channel, verdict.status or health.last_status or "up", verdict.reason, own_results, 0.0)
        self.last_check[channel] = check
        if only is None:  # this node's own cycle; an agent's post leaves this node's probe metrics alone
            self.metrics.observe_check(channel, own_results, health)
        self.metrics.observe_vantages(channel, quorum, now, only)
        if verdict.status is None:
            return  # too few vantages report: the channel keeps its state, nobody is told of an outage
        for ev in health.observe(verdict.status, verdict.reason, now):
            await self.react(channel, ev, check)

    async def monitoring_degraded(self, channel: str, silent: list[str], reporting: list[str]) -> None:
        """Fewer vantages report than the quorum needs: a monitoring problem, not an outage. Each silent vantage
        gets a staff-only monitoring situation (quorum.monitoring_lost): staff are told once, through the
        ledger, however many channels lose their quorum and however often the daemon restarts."""
        names = ", ".join(silent)
        event(self.log, "monitoring.degraded", f"monitoring degraded: vantage {names} silent; {channel} cannot "
              f"reach its quorum ({len(reporting)} reporting)", logging.WARNING, channel=channel, vantages=silent)
        if not self.leading:
            return
        now = self.clock.now()
        opened = False
        for name in silent:
            lost = [ch for ch, q in self.quorums.items() if name in q.views and q.verdict(now).status is None]
            opened = monitoring_lost(self.engine, name, lost or [channel]) is not None or opened
        self.silenced = None  # read again from the store when next needed
        if opened:
            await self.run_steps()

    async def monitoring_restored(self, vantage: str) -> None:
        """A vantage heard again closes its monitoring situation: staff get the short "restored" message."""
        if not self.leading:
            return
        if self.silenced is None:
            self.silenced = silent_vantages(self.store)
        if vantage not in self.silenced:
            return
        self.silenced.discard(vantage)
        if monitoring_back(self.engine, vantage) is not None:
            event(self.log, "monitoring.restored", f"vantage {vantage} reports again; monitoring restored",
                  vantage=vantage)
            await self.run_steps()

    def ping(self, vantage: str) -> None:
        """A plain heartbeat from a device that cannot run the agent."""
        self.heard.hear(vantage, self.clock.now())
        self.share(vantage, "", "up", "heard", [])

    async def react(self, channel: str, ev: str, check: ChannelCheck) -> None:
        """A health change: continuity.triggers decides what it means; the daemon logs it and runs the steps.
        A follower only logs it: the leader decides (and sees the same channel with its own probes)."""
        if not self.leading:
            event(self.log, f"channel.{ev}", f"{channel}: {ev.replace('_', ' ')} (seen by follower {self.node})",
                  channel=channel, node=self.node)
            return
        said = triggers.health_changed(self.engine, channel, ev, check.reason, self.health[channel].spec)
        for s in said:
            event(self.log, s.kind, s.message, s.level, **s.fields)
        if ev == "went_down" or any(s.kind in triggers.ACTED for s in said):
            await self.run_steps()

    async def surge_cycle(self, channel: str) -> None:
        """Read the channel's volume; open or close its unplanned surge (daemon/surge.py decides which)."""
        if not self.leading:
            return
        changed = await self.surge.cycle(channel)
        self.metrics.observe_surge(self.surge.last[channel])
        if changed:
            await self.run_steps()

    # steps ---------------------------------------------------------------------------------------------------

    async def run_steps(self) -> list[StepResult]:
        """Run what is due (only the leader sends; a follower's actions are picked up by the leader's resync)."""
        if not self.leading:
            return []
        task = asyncio.current_task()
        nested = task in self._in_steps
        if task is not None:
            self._in_steps.add(task)
        try:
            return await self._run_steps()
        finally:
            if task is not None and not nested:
                self._in_steps.discard(task)

    async def _run_steps(self) -> list[StepResult]:
        moved = triggers.advance(self.engine)
        for what, window in moved.maintenance:
            event(self.log, f"maintenance.{what}", f"maintenance #{window.id} of {window.channel} {what}",
                  channel=window.channel, window=window.id)
            h = self.health.get(window.channel)
            if what == "ended" and h is not None and h.is_down and \
                    self.store.find_open("outage", window.channel) is None:
                opened = self.engine.open(window.channel, by="daemon", source="daemon",
                                          reason=f"still down after maintenance #{window.id}: {h.last_reason}"[:500])
                event(self.log, "outage.opened", f"outage #{opened.situation.id} of {window.channel} opened",
                      channel=window.channel, situation=opened.situation.id)
        for what, run in moved.campaigns:
            event(self.log, f"campaign.{what}", f"campaign {run.name} (run {run.run}) {what}", campaign=run.name,
                  situation=run.situation_id)
        results = await self.engine.run_due_async(inline=False)
        for r in results:
            outcome = r.state
            self.metrics.steps.labels(outcome).inc()
            if r.row.late:
                self.metrics.steps.labels("late").inc()
            level = logging.INFO if outcome == "done" else logging.WARNING
            what = f"{r.row.step_id} (switch off)" if r.row.phase == "undo" else r.row.step_id
            event(self.log, f"step.{outcome}", f"#{r.row.situation_id} {what} → {r.row.sink}: {outcome}"
                  + (f" ({r.detail})" if outcome != "done" else ""), level, situation=r.row.situation_id,
                  step=r.row.step_id, phase=r.row.phase, sink=r.row.sink, late=r.row.late)
        self.sync_step_jobs()
        self._update_gauges()
        self.autoreply.sync()  # a responder switched on or off by these steps starts or stops now
        return results

    async def resync(self) -> None:
        if not self.leading:
            return
        self.engine.recover()
        self.autoreply.sync()  # situations opened or closed by other processes (the CLI)
        due = min([t for t in [self.store.next_due(), *(when for _, when in triggers.next_times(self.engine))]
                   if t is not None], default=None)
        if due is not None and due <= self.clock.now():
            await self.run_steps()
        else:
            self.sync_step_jobs()
            self._update_gauges()

    def sync_step_jobs(self) -> None:
        """A date job for every pending ledger row at its exact due (or retry) time."""
        from apscheduler.triggers.date import DateTrigger

        if not self.scheduler.running:
            return
        live = {job.id for job in self.scheduler.get_jobs()}
        self._step_jobs &= live
        wanted: list[tuple[str, datetime]] = [(f"{what}-{ts(when)}", when)
                                              for what, when in triggers.next_times(self.engine)]
        for row in self.store.pending_steps():
            when = row.next_retry_at if row.state == "failed" else row.due_at
            if when is not None:
                wanted.append((f"step-{row.id}-{ts(when)}", when))
        for job_id, when in wanted:
            if job_id in self._step_jobs:
                continue
            run_at = max(when, datetime.now(UTC) + timedelta(milliseconds=10))
            self.scheduler.add_job(self._job(self.run_steps_job), DateTrigger(run_date=run_at), id=job_id,
                                   misfire_grace_time=None, replace_existing=True)
            self._step_jobs.add(job_id)

    async def run_steps_job(self) -> None:
        await self.run_steps()

    def _update_gauges(self) -> None:
        counts: dict[str, int] = {}
        for sit in self.store.open_situations():
            counts[sit.kind] = counts.get(sit.kind, 0) + 1
        for kind in ("outage", "surge", "maintenance", "degraded", "monitoring"):
            self.metrics.situations_open.labels(kind).set(counts.get(kind, 0))

    # views --------------------------------------------------------------------------------------------------

    def healthz(self, full: bool = False) -> tuple[bool, dict[str, Any]]:
        """Alive and scheduling: the scheduler runs and every channel was probed recently.

        /healthz shares its listener with the public pages, so without `full` (the bearer token) the answer
        holds only the verdict and each channel's state: probe reasons name internal hosts and servers' text."""
        now = self.clock.now()
        stale = []
        for ch, h in self.health.items():
            last = self.last_cycle_at.get(ch)
            limit = 3 * h.spec.every + timedelta(seconds=30)
            if (last is None and self.started_at is not None and now - self.started_at > limit) or (
                    last is not None and now - last > limit):
                stale.append(ch)
        store_error = self.seat.last_error  # the store unreachable: nothing can be recorded, so nothing is sent
        ok = self.scheduler.running and not stale and not self.stopping.is_set() and store_error is None
        # A follower is healthy when it probes and serves; `role` says which it is (SQLite: always the leader).
        cluster = {"role": "leader" if self.leading else "follower"}
        if store_error is not None:
            cluster["store"] = "unreachable: nothing is recorded or sent until it is back"
        if not full:  # the node's name is the host's by default: only with the token
            return ok, {"ok": ok, "scheduler_running": self.scheduler.running, **cluster,
                        "channels": {ch: {"state": h.state, "degraded": h.degraded} for ch, h in self.health.items()}}
        from continuity.errors import StoreBusy
        from continuity.views import interrupted, recovery

        try:
            running = self.store.running_steps()
        except StoreBusy:
            running = []
        return ok, {
            "ok": ok,
            **cluster,
            "node": self.node,
            "epoch": self.epoch,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "scheduler_running": self.scheduler.running,
            "stale_channels": stale,
            # steps a process that is gone left running (a CLI killed mid-send): what recovery will do
            "interrupted_steps": [{"id": r.id, "step": r.step_id, "sink": r.sink, "recovery": recovery(r)}
                                  for r in running if interrupted(r)],
            "channels": {ch: {"state": h.state, "degraded": h.degraded,
                              "last_check": self.last_cycle_at[ch].isoformat() if ch in self.last_cycle_at else None,
                              "reason": h.last_reason} for ch, h in self.health.items()},
            # What each vantage sees of the channels seen from several places, and who was heard when.
            "vantage": self.vantage,
            "heard": self.heard.as_dict(),
            "quorum": {ch: q.as_dict(now) for ch, q in self.quorums.items()},
        }
