"""Time turned into engine calls: maintenance windows that are announced, start and end, and campaign phases
that are due (brief, launch, surge on and off, reminders).

The engine only opens, updates and closes what it is told to; this is the one place that decides, from the
clock, what to tell it. `tick` and the daemon's scheduler call `advance` before running due steps; a command
that acts on one situation (`restore`, `settle`) does not, so it never moves a campaign or a window as a side
effect. The engine never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import continuity.campaigns  # noqa: F401 (registers the `campaign` template variable)

if TYPE_CHECKING:
    from continuity.campaigns.store import CampaignRun
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
