"""A website banner or customer notice as two files a web server already knows how to serve.

The site includes `<name>.html` (or reads `<name>.json` from its own script). Several situations can have a
banner at the same time, so both files hold one entry per situation: apply merges this situation's entry in,
undo takes it out, and the files disappear when no situation is left. Writes are atomic (temp file, fsync,
rename) so a visitor never sees half a banner, and a lock file serialises read-merge-write across processes.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from continuity.sinks.base import Action, Outcome
from continuity.sinks.files import Entries, FilesSettings, LockedFilesSink, UnreadableFile, read_json, write_atomic

# Situation id (as a JSON key) -> that situation's banner entry.
Banners = Entries

# A web address in banner text, as banner.js finds it: http(s) only, up to whitespace or an angle bracket.
_URL = re.compile(r"https?://[^\s<>]+", re.IGNORECASE)
# Punctuation that ends the sentence around a URL rather than the URL ("…: https://x/faq.").
_TRAILING = ".,;:!?'\""
# Control characters other than tab and line breaks: NUL and the rest are parse errors in HTML, which browsers
# drop or replace each in their own way; a reason pasted into a site's banner template may carry some.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class FileBannerSettings(FilesSettings):
    """Where the banner files live and what they are called."""

    name: str = "continuity-banner"


class FileBannerSink(LockedFilesSink):
    """Writes `<name>.json` and `<name>.html` into a directory the website serves."""

    type_name = "file_banner"
    reads_earlier = False  # the banner files hold the current state (see Runner._reads_earlier)
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

    Titles and bodies are text, never markup: everything is escaped and blank lines become paragraphs. The one
    exception is made here, not taken from the text: an http(s) URL in a body becomes a link (`link_urls`).
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
    return html.escape(_CONTROL.sub(" ", str(value)), quote=True)


def _text(value: str) -> str:
    lines = _CONTROL.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))
    return html.escape(lines, quote=True).replace("\n", "<br>\n")


def _paragraphs(body: str) -> str:
    paras = [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return "".join(f'  <p class="continuity-banner-body">{link_urls(p)}</p>\n' for p in paras)


def url_end(candidate: str) -> str:
    """The URL itself: trailing sentence punctuation dropped, and a ")" only when the URL opened none."""
    url = candidate
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count(")") > url.count("("))):
        url = url[:-1]
    return url


def link_urls(text: str) -> str:
    """Escaped text with each http(s) URL wrapped in `<a href>` (escaped too); a customer clicks the FAQ link
    instead of copying it. Nothing else becomes markup: `javascript:` and other schemes stay plain text."""
    out: list[str] = []
    done = 0
    for match in _URL.finditer(text):
        url = url_end(match.group())
        if not _web_address(url):
            continue
        out.append(_text(text[done:match.start()]))
        out.append(f'<a href="{_attr(url)}">{_text(url)}</a>')
        done = match.start() + len(url)
    out.append(_text(text[done:]))
    return "".join(out)


def _web_address(url: str) -> bool:
    """An http(s) URL with a host: what a browser would follow (banner.js asks `new URL` the same)."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False
