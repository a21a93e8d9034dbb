"""A website banner or customer notice as two files a web server already knows how to serve.

The site includes `<name>.html` (or reads `<name>.json` from its own script). Several situations can have a
banner at the same time, so both files hold one entry per situation: apply merges this situation's entry in,
undo takes it out, and the files disappear when no situation is left. Writes are atomic (temp file, fsync,
rename) so a visitor never sees half a banner, and a lock file serialises read-merge-write across processes.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from continuity.sinks.base import Action, Outcome
from continuity.sinks.files import Entries, FilesSettings, LockedFilesSink, UnreadableFile, read_json, write_atomic

# Situation id (as a JSON key) -> that situation's banner entry.
Banners = Entries


class FileBannerSettings(FilesSettings):
    """Where the banner files live and what they are called."""

    name: str = "continuity-banner"


class FileBannerSink(LockedFilesSink):
    """Writes `<name>.json` and `<name>.html` into a directory the website serves."""

    type_name = "file_banner"
    Settings = FileBannerSettings
    actions = frozenset({"banner", "notice"})
    idempotent = True
    reversible = True
    description = "a banner or notice written as JSON and HTML files for the website to include"
    noun = "banner"

    settings: FileBannerSettings

    @property
    def json_path(self) -> Path:
        return self.directory / f"{self.settings.name}.json"

    @property
    def html_path(self) -> Path:
        return self.directory / f"{self.settings.name}.html"

    async def apply(self, action: Action) -> Outcome:
        if not action.messages:
            return Outcome.fail("the step rendered no message to show")
        entry = self._entry(action)
        return await self.merge(lambda banners: {**banners, str(action.situation_id): entry}, "banner shown")

    async def undo(self, action: Action) -> Outcome:
        situation = str(action.situation_id)

        def remove(banners: Banners) -> Banners:
            return {k: v for k, v in banners.items() if k != situation}

        return await self.merge(remove, "banner removed")

    def _entry(self, action: Action) -> dict[str, Any]:
        return banner_entry(action, self.context.clock.now())

    def summary(self, left: int) -> str:
        return f"{left} active in {self.json_path.name}"

    def write_entries(self, before: Banners, after: Banners) -> None:
        if after:
            now = self.context.clock.now().isoformat()
            doc = {"active": True, "updated_at": now, "banners": after}
            write_atomic(self.json_path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
            write_atomic(self.html_path, render_html(after))
        else:
            for path in (self.json_path, self.html_path):
                path.unlink(missing_ok=True)

    def read_entries(self) -> Banners:
        doc = read_json(self.json_path)
        if not isinstance(doc, dict) or not isinstance(doc.get("banners", {}), dict):
            raise UnreadableFile(
                f"{self.json_path} is not a banner file continuity wrote; move it away and run the step again"
            )
        banners: Banners = doc.get("banners", {})
        return banners


def banner_entry(action: Action, updated_at: datetime) -> dict[str, Any]:
    """One situation's banner as data: every locale's title and body (the daemon's /banner.json serves the same)."""
    return {
        "situation_id": action.situation_id,
        "step_id": action.step_id,
        "key": action.key,
        "kind": action.kind,
        "channel": action.channel,
        "updated_at": updated_at.isoformat(),
        "default_locale": action.primary.locale,
        "locales": {r.locale: {"title": r.title, "body": r.body} for r in action.messages},
    }


def render_html(banners: dict[str, Any]) -> str:
    """One status region per situation, in its default locale; other locales are present but hidden.

    Titles and bodies are text, never markup: everything is escaped and blank lines become paragraphs.
    """
    parts: list[str] = []
    for situation, entry in sorted(banners.items(), key=lambda kv: kv[1].get("updated_at", "")):
        default = entry.get("default_locale")
        locales: dict[str, dict[str, str]] = entry.get("locales", {})
        for locale, text in sorted(locales.items(), key=lambda kv: kv[0] != default):
            hidden = "" if locale == default else " hidden"
            parts.append(
                f'<div class="continuity-banner" role="status" lang="{_attr(locale)}"'
                f' data-situation="{_attr(situation)}"{hidden}>\n'
                f'  <p class="continuity-banner-title"><strong>{_text(text.get("title", ""))}</strong></p>\n'
                f"{_paragraphs(text.get('body', ''))}"
                "</div>\n"
            )
    return "".join(parts)


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def _text(value: str) -> str:
    return html.escape(value, quote=True).replace("\n", "<br>\n")


def _paragraphs(body: str) -> str:
    paras = [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f'  <p class="continuity-banner-body">{_text(p)}</p>\n' for p in paras)
