"""A website banner or customer notice as two files a web server already knows how to serve.

The site includes `<name>.html` (or reads `<name>.json` from its own script). Several situations can have a
banner at the same time, so both files hold one entry per situation: apply merges this situation's entry in,
undo takes it out, and the files disappear when no situation is left. Writes are atomic (temp file, fsync,
rename) so a visitor never sees half a banner, and a lock file serialises read-merge-write across processes.
"""

from __future__ import annotations

import errno
import fcntl
import html
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from continuity.sinks.base import Action, Outcome, Sink, SinkSettings, resolve_path

# Situation id (as a JSON key) -> that situation's banner entry.
Banners = dict[str, Any]

# Errors a full disk or a busy file system gives: the runner may try again later; anything else
# (permissions, a file where the directory should be) needs a person.
_TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.EINTR})


class FileBannerSettings(SinkSettings):
    """Where the banner files live and what they are called."""

    directory: str
    name: str = "continuity-banner"


class BannerFileError(Exception):
    """The existing banner file cannot be merged into (someone edited it by hand)."""


class FileBannerSink(Sink):
    """Writes `<name>.json` and `<name>.html` into a directory the website serves."""

    type_name = "file_banner"
    Settings = FileBannerSettings
    actions = frozenset({"banner", "notice"})
    idempotent = True
    reversible = True
    description = "a banner or notice written as JSON and HTML files for the website to include"

    settings: FileBannerSettings

    @property
    def directory(self) -> Path:
        return resolve_path(self.context, self.settings.directory)

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
        return await self._run(lambda banners: {**banners, str(action.situation_id): entry}, "banner shown")

    async def undo(self, action: Action) -> Outcome:
        situation = str(action.situation_id)

        def remove(banners: Banners) -> Banners:
            return {k: v for k, v in banners.items() if k != situation}

        return await self._run(remove, "banner removed")

    def _entry(self, action: Action) -> dict[str, Any]:
        return banner_entry(action, self.context.clock.now())

    async def _run(self, change: Callable[[Banners], Banners], done: str) -> Outcome:
        import asyncio  # here, not at the top: loading a config imports this module, and the CLI must start fast

        # File locking and fsync block; keep them off the event loop.
        try:
            remaining = await asyncio.to_thread(self._update, change)
        except BannerFileError as exc:
            return Outcome.fail(str(exc))
        except OSError as exc:
            detail = f"cannot write the banner in {self.directory}: {exc.strerror or type(exc).__name__}"
            return Outcome.retry(detail) if exc.errno in _TEMPORARY_ERRNOS else Outcome.fail(detail)
        return Outcome.success(f"{done}; {remaining} active in {self.json_path.name}")

    def _update(self, change: Callable[[Banners], Banners]) -> int:
        """Read, change and write both files under the lock; the number of banners left."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            banners = self._read()
            banners = change(banners)
            if banners:
                now = self.context.clock.now().isoformat()
                doc = {"active": True, "updated_at": now, "banners": banners}
                _write_atomic(self.json_path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
                _write_atomic(self.html_path, render_html(banners))
            else:
                for path in (self.json_path, self.html_path):
                    path.unlink(missing_ok=True)
            return len(banners)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # A separate lock file: the data files are replaced by rename, so locking them would lock a ghost.
        lock_path = self.directory / f".{self.settings.name}.lock"
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.json_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        # Refuse to overwrite a file we cannot understand: other situations' banners would be lost silently.
        if not isinstance(doc, dict) or not isinstance(doc.get("banners", {}), dict):
            raise BannerFileError(
                f"{self.json_path} is not a banner file continuity wrote; move it away and run the step again"
            )
        banners: dict[str, Any] = doc.get("banners", {})
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


def _write_atomic(path: Path, text: str) -> None:
    """Write next to the target, fsync, then rename over it: readers see the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; a web server running as another user must be able to read the banner.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every file system allows opening a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
