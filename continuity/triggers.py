"""Time and observations turned into engine calls: maintenance windows that are announced, start and end,
campaign phases that are due (brief, launch, surge on and off, reminders), and a channel's health changes
(open or close its outage or its degraded situation, tell staff it looks healthy or flaps).

The engine only opens, updates and closes what it is told to; this is the one place that decides, from the
clock, what to tell it. `tick` and the daemon's scheduler call `advance` before running due steps; a command
that acts on one situation (`restore`, `settle`) does not, so it never moves a campaign or a window as a side
effect. The engine never imports this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import continuity.campaigns  # noqa: F401 (registers the `campaign` template variable)
from continuity.maintenance import active_window
from continuity.notes import FLAPPING_TEMPLATE, HEALTHY_TEMPLATE

if TYPE_CHECKING:
    from continuity.campaigns.store import CampaignRun
    from continuity.config.models import Health
    from continuity.engine import Engine
    from continuity.store.records import MaintenanceRecord


@dataclass
class Advanced:
    """What moved on this pass, for the daemon's log: (what happened, the window or the campaign run)."""

    maintenance: list[tuple[str, MaintenanceRecord]] = field(default_factory=list)
    campaigns: list[tuple[str, CampaignRun]] = field(default_factory=list)


def advance(engine: Engine) -> Advanced:
    """Move every maintenance window and campaign along the engine's clock."""
    from continuity.campaigns.phases import advance as advance_campaigns
    from continuity.maintenance import advance as advance_maintenance

    moved = Advanced()
    moved.maintenance = advance_maintenance(engine)
    moved.campaigns = advance_campaigns(engine)
    return moved


def next_times(engine: Engine) -> list[tuple[str, datetime]]:
    """When a window or a campaign next needs `advance`, each with what it is ("maintenance", "campaign"): the
    daemon schedules a wake-up at each."""
    from continuity.campaigns.phases import next_times as campaign_times
    from continuity.maintenance import next_times as maintenance_times

    return [("maintenance", t) for t in maintenance_times(engine)] + [("campaign", t) for t in campaign_times(engine)]


# What a decision did to a situation (a step may now be due); the rest of what it says is only news.
ACTED = frozenset({"outage.opened", "outage.closed", "outage.kept", "staff.told", "degraded.opened",
                   "degraded.closed"})


@dataclass(frozen=True)
class Said:
    """One thing a decision did or chose not to do, for the caller's log (the daemon's JSON events)."""

    kind: str
    message: str
    level: int = logging.INFO
    fields: dict[str, Any] = field(default_factory=dict)


def health_changed(engine: Engine, channel: str, change: str, reason: str, spec: Health) -> list[Said]:
    """What a change of a channel's health (`went_down`, `recovered`, `flapping`, `degraded`,
    `degraded_cleared`) means for its situations, done through the engine. The caller runs the steps."""
    said: list[Said] = []
    sit = engine.store.find_open("outage", channel)
    if change == "went_down":
        said.append(Said("channel.down", f"{channel} is down: {reason}", fields={"channel": channel}))
        window = active_window(engine, channel)
        if window is not None:
            said.append(Said("maintenance.quiet", f"{channel} is inside maintenance #{window.id}; no outage opened",
                             fields={"channel": channel}))
        elif sit is None:
            opened = engine.open(channel, reason=f"health checks failing: {reason}"[:500], by="daemon",
                                 source="daemon")
            said.append(Said("outage.opened", f"outage #{opened.situation.id} of {channel} opened",
                             fields={"channel": channel, "situation": opened.situation.id}))
        said += degraded(engine, channel, False, "", spec)  # the outage supersedes the slow-channel situation
    elif change == "recovered":
        said.append(Said("channel.up", f"{channel} passes its health checks again", fields={"channel": channel}))
        if sit is None:
            return said
        if sit.source == "daemon" or spec.close_manual:
            engine.close(channel, by="daemon", note="health checks pass again")
            said.append(Said("outage.closed", f"outage #{sit.id} of {channel} closed",
                             fields={"channel": channel, "situation": sit.id}))
        else:
            engine.note(sit.id, "channel-healthy", HEALTHY_TEMPLATE)
            said.append(Said("outage.kept", f"outage #{sit.id} was opened by {sit.opened_by}; staff told the "
                             "channel looks healthy", fields={"channel": channel, "situation": sit.id}))
    elif change == "flapping":
        said.append(Said("channel.flapping", f"{channel} is flapping; held down", logging.WARNING,
                         {"channel": channel}))
        if sit is not None:
            engine.note(sit.id, "channel-flapping", FLAPPING_TEMPLATE)
            said.append(Said("staff.told", f"staff of outage #{sit.id} told {channel} is flapping",
                             fields={"channel": channel, "situation": sit.id}))
    elif change in ("degraded", "degraded_cleared"):
        said.append(Said(f"channel.{change}", f"{channel}: {change.replace('_', ' ')} {reason}".rstrip(),
                         fields={"channel": channel}))
        said += degraded(engine, channel, change == "degraded", reason, spec)
    return said


def degraded(engine: Engine, channel: str, on: bool, reason: str, spec: Health) -> list[Said]:
    """Open or close the channel's `degraded` situation when its health names a degraded_playbook."""
    name = spec.degraded_playbook
    if name is None:
        return []
    sit = engine.store.find_open("degraded", channel)
    if on and sit is None and active_window(engine, channel) is None:
        opened = engine.open(channel, kind="degraded", playbook=name, by="daemon", source="daemon",
                             reason=f"health checks report a degraded channel: {reason}"[:500])
        return [Said("degraded.opened", f"degraded #{opened.situation.id} of {channel} opened",
                     fields={"channel": channel, "situation": opened.situation.id})]
    if not on and sit is not None:
        engine.close(channel, by="daemon", note="no longer degraded", kind="degraded")
        return [Said("degraded.closed", f"degraded #{sit.id} of {channel} closed",
                     fields={"channel": channel, "situation": sit.id})]
    return []
