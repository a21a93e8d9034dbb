"""The daemon's reaction to an unplanned surge: a channel's volume readings stay above the threshold, so its
surge playbook opens through the engine; they stay under it, so the surge it opened closes again.

Only surges the daemon opened itself are closed by it. A surge a person declared, or a campaign's, is left
alone: the daemon neither opens a second one beside it nor closes it when the numbers drop.
"""

from __future__ import annotations

import logging

from continuity.clock import Clock
from continuity.config.loader import LoadedConfig
from continuity.engine import Engine
from continuity.logs import event
from continuity.probes.surge import SurgeCheck, SurgeReader, SurgeWatch
from continuity.store.sqlite import SqliteStore

SOURCE = "daemon"


class SurgeMonitor:
    """Reads every surge-watched channel on its own schedule and opens/closes its `surge` situation."""

    def __init__(self, loaded: LoadedConfig, engine: Engine, store: SqliteStore, clock: Clock,
                 log: logging.Logger) -> None:
        self.engine = engine
        self.store = store
        self.log = log
        self.reader = SurgeReader(loaded, clock)
        self.watches = {ch: SurgeWatch(self.reader.spec(ch)) for ch in self.reader.channels}
        self.last: dict[str, SurgeCheck] = {}

    def resume(self) -> None:
        """After a restart, a surge this daemon opened is still on: it needs `clear_after` readings under the
        threshold to close, exactly as if the daemon had never stopped."""
        for sit in self.store.open_situations():
            watch = self.watches.get(sit.channel)
            if watch is not None and sit.kind == "surge" and sit.source == SOURCE:
                watch.state, watch.count = "surging", 0

    async def cycle(self, channel: str) -> bool:
        """One reading of a channel and the reaction to it; True when a situation was opened or closed (the
        caller then runs the due steps at once)."""
        check = await self.reader.read(channel)
        watch = self.watches[channel]
        changed = False
        for ev in watch.observe(check.above):
            changed = self.react(channel, ev, check) or changed
        check.state = watch.state
        self.last[channel] = check
        if check.above is None:
            event(self.log, "surge.unreadable", f"{channel}: volume not readable: {check.reason}", logging.WARNING,
                  channel=channel)
        return changed

    def react(self, channel: str, ev: str, check: SurgeCheck) -> bool:
        spec = self.reader.spec(channel)
        sit = self.store.find_open("surge", channel)
        if ev == "surge_started":
            event(self.log, "surge.detected", f"{channel}: surge: {check.reason}", logging.WARNING, channel=channel)
            if sit is not None:
                event(self.log, "surge.already_open", f"surge #{sit.id} of {channel} is already open "
                      f"(opened by {sit.opened_by}); nothing more to do", channel=channel, situation=sit.id)
                return False
            opened = self.engine.open(
                channel, kind="surge", playbook=spec.playbook, by=SOURCE, source=SOURCE, reason=check.reason[:500],
                data={"surge": {"readings": [{"probe": r.probe, "value": r.value, "threshold": r.threshold}
                                             for r in check.readings]}})
            event(self.log, "surge.opened", f"surge #{opened.situation.id} of {channel} opened", channel=channel,
                  situation=opened.situation.id)
            return True
        if ev == "surge_over":
            event(self.log, "surge.cleared", f"{channel}: back under the threshold: {check.reason}",
                  channel=channel)
            if sit is None:
                return False
            if sit.source != SOURCE:
                event(self.log, "surge.kept", f"surge #{sit.id} was opened by {sit.opened_by}; the daemon does not "
                      "close it", channel=channel, situation=sit.id)
                return False
            self.engine.close(channel, by=SOURCE, kind="surge",
                              note=f"{spec.clear_after} reading(s) in a row under the threshold; last: "
                              f"{check.reason}"[:500])
            event(self.log, "surge.closed", f"surge #{sit.id} of {channel} closed", channel=channel,
                  situation=sit.id)
            return True
        return False

    async def aclose(self) -> None:
        await self.reader.aclose()
