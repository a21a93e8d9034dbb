"""The website banners in effect right now, read from the ledger.

A banner is on while its situation is open and a `banner` step of it is done and not yet undone: the same
rule `continuity status` uses for "switched on". Each is rendered exactly as the file_banner sink received it
(the runner's own Action, with the clock pinned to the moment the step ran) and shaped by file_banner's
`banner_entry`, so the JSON file on disk and /banner.json say the same words. The ledger, not the file, is the
source: the daemon may not share a disk with the web server, and a site may route banners to a webhook only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from continuity.clock import SystemClock
from continuity.config.loader import LoadedConfig
from continuity.engine import CAMPAIGN_SCOPE, Engine
from continuity.errors import ContinuityError
from continuity.sinks.file_banner import banner_entry
from continuity.store.records import SituationRecord, StepRecord
from continuity.store.sqlite import SqliteStore
from continuity.views import switched_on

_CACHE_LIMIT = 256


def banner_row(rows: list[StepRecord]) -> StepRecord | None:
    """The banner currently shown for one situation: the latest applied `banner` row still switched on."""
    on = [r for r in switched_on(rows) if r.action == "banner"]
    return max(on, key=lambda r: (r.started_at or r.due_at, r.id), default=None)


def revision(locales: dict[str, Any]) -> str:
    """Changes whenever any wording changes: a visitor who dismissed one text sees the next one."""
    return hashlib.sha256(json.dumps(locales, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


class BannerSource:
    """Builds the /banner.json document; renders each banner once and keeps it until its inputs change."""

    def __init__(self, loaded: LoadedConfig, store: SqliteStore) -> None:
        self.loaded = loaded
        self.store = store
        # Rendering happens "as of" the moment each step ran: the engine replays it (Engine.action_as_ran).
        self.engine = Engine(loaded, store, SystemClock())
        self.errors: list[str] = []
        self._cache: dict[tuple[Any, ...], dict[str, Any]] = {}

    def banners(self) -> list[dict[str, Any]]:
        out = []
        self.errors = []
        for sit in self.store.open_situations():
            row = banner_row(self.store.steps_for(sit.id))
            if row is None:
                continue
            key = (row.id, sit.revision, sit.reason, sit.eta, sit.note, json.dumps(sit.data, sort_keys=True))
            entry = self._cache.get(key)
            if entry is None:
                try:
                    entry = self._render(sit, row)
                except ContinuityError as exc:  # a template broken since the step ran: skip, report in the log
                    self.errors.append(f"banner of situation {sit.id}: {exc}")
                    continue
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = entry
            out.append(entry)
        return out

    def _render(self, sit: SituationRecord, row: StepRecord) -> dict[str, Any]:
        when = row.started_at or row.due_at
        entry = banner_entry(self.engine.action_as_ran(row), when)
        locales: dict[str, Any] = entry["locales"]
        # The public shape: no ledger keys or step ids (they name sinks and playbook internals), and no
        # campaign scope key (`campaign:<name>` is the staff's name; customers read the campaign's title).
        channel = entry["channel"]
        if str(channel).startswith(CAMPAIGN_SCOPE) or sit.channel.startswith(CAMPAIGN_SCOPE):
            channel = None
        return {
            "id": str(sit.id),
            "revision": revision(locales),
            "situation_kind": sit.kind,
            "channel": channel,
            "updated_at": entry["updated_at"],
            "default_locale": entry["default_locale"],
            "locales": locales,
        }

    def document(self) -> dict[str, Any]:
        """The whole /banner.json: no timestamp of its own, so an unchanged answer keeps its ETag."""
        org = self.loaded.config.organisation
        banners = self.banners()
        return {
            "active": bool(banners),
            "default_locale": org.default_locale,
            "locales": list(org.locales),
            "poll_seconds": int(self.loaded.config.daemon.public.banner_poll.total_seconds()),
            "banners": banners,
        }
