"""The daemon's public, read-only routes: /banner.json, /banner.js, /status, /status.json, /voice.xml.

No route here needs the bearer token because none changes anything: they read the store and the daemon's
health. /banner.json is public, read-only data for the shop's own pages, which live on another origin: it
answers cross-origin reads from any page unless `daemon.public.cors_origins` lists the ones allowed (an origin
left out is logged once, so "the banner does not show" has a line to find). /status.json answers other
origins only when `cors_origins` names them (or `*`). Answers carry an ETag, so a browser polling
/banner.json every few seconds mostly gets an empty 304.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from continuity.public.banner import BannerSource
from continuity.public.pages import PageCache
from continuity.public.status import StatusPage, pick_locale, status_data
from continuity.public.voice import announcement, twiml

if TYPE_CHECKING:
    from aiohttp import web

    from continuity.clock import Clock
    from continuity.config.loader import LoadedConfig
    from continuity.probes.health import ChannelHealth
    from continuity.store.sqlite import SqliteStore


class Served(Protocol):
    """What the public routes read of the process serving them (the daemon, continuity.daemon.service): the
    config, the store, the time, and what its probes last saw. Nothing here can change state."""

    loaded: LoadedConfig
    store: SqliteStore
    clock: Clock
    health: dict[str, ChannelHealth]
    last_cycle_at: dict[str, datetime]

log = logging.getLogger("continuity.public")

_COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# The status page needs its own inline CSS and its own small script (status.js, which re-reads the page to
# update it in place): no other scripts, no frames, no outside requests.
_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
             "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *")
# At most this many refused origins are remembered for the once-only log line (a scanner cannot fill memory).
_REFUSED_ORIGINS_KEPT = 100


def banner_script() -> bytes:
    return (resources.files("continuity.public") / "banner.js").read_bytes()


def status_script() -> bytes:
    return (resources.files("continuity.public") / "status.js").read_bytes()


def favicon() -> bytes:
    """A 16×16 icon (an ICO holding one PNG, drawn here): browsers ask for /favicon.ico on every status page,
    and a 404 there is noise in every log and audit."""
    import struct
    import zlib

    row = b"\x00" + bytes((0x2e, 0x7d, 0x32, 0xff)) * 16  # filter byte, then 16 green RGBA pixels
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(row * 16)) + chunk(b"IEND", b""))
    return struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 22) + png


def health_states(daemon: Served) -> dict[str, str | None]:
    """Each probed channel as up / degraded / down / unknown (not probed since start); hysteresis respected."""
    out: dict[str, str | None] = {}
    for ch, h in daemon.health.items():
        if ch not in daemon.last_cycle_at:
            out[ch] = "unknown"
        elif h.state in ("down", "recovering", "flapping"):
            out[ch] = "down"
        else:
            out[ch] = "degraded" if h.degraded else "up"
    return out


class PublicSite:
    def __init__(self, daemon: Served) -> None:
        self.daemon = daemon
        self.loaded = daemon.loaded
        self.public = daemon.loaded.config.daemon.public
        self.banners = BannerSource(daemon.loaded, daemon.store)
        self.page = StatusPage(daemon.loaded)
        self.pages = PageCache()
        self.script = banner_script()
        self.status_script = status_script()
        self.icon = favicon()
        self._reported: set[str] = set()
        self._refused: set[str] = set()

    # helpers -------------------------------------------------------------------------------------------------

    def _cors(self, request: web.Request, headers: dict[str, str], public: bool = False) -> None:
        """`public`: read-only data any shop page may read (the banner) unless `cors_origins` restricts it."""
        origins = self.public.cors_origins
        origin = request.headers.get("Origin")
        if "*" in origins or (public and not origins):
            headers["Access-Control-Allow-Origin"] = "*"
        elif origins:
            headers["Vary"] = "Origin"
            if origin and origin in origins:
                headers["Access-Control-Allow-Origin"] = origin
            elif origin and public and origin not in self._refused and len(self._refused) < _REFUSED_ORIGINS_KEPT:
                self._refused.add(origin)
                log.warning("%s asked from %s, which daemon.public.cors_origins does not list: the banner will "
                            "not show on that site (add the origin, or remove cors_origins to allow any)",
                            request.path, origin.encode("unicode_escape").decode("ascii")[:200])

    def _answer(self, request: web.Request, body: bytes, content_type: str, cache: str,
                extra: dict[str, str] | None = None, cors: bool = False, public: bool = False,
                etag: str | None = None) -> web.Response:
        from aiohttp import web

        etag = etag or '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {**_COMMON, "Cache-Control": cache, "ETag": etag, **(extra or {})}
        if cors:
            self._cors(request, headers, public)
        if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})

    def _locale(self, request: web.Request) -> str:
        return pick_locale(self.loaded, request.query.get("lang"), request.headers.get("Accept-Language"))

    def _status(self, request: web.Request) -> dict[str, Any]:
        return status_data(self.loaded, self.daemon.store, health_states(self.daemon), self.daemon.clock.now(),
                           self._locale(request))

    # routes ---------------------------------------------------------------------------------------------------

    async def banner_json(self, request: web.Request) -> web.Response:
        doc = self.banners.document()
        for problem in self.banners.errors:
            if problem not in self._reported:  # once, not at every visitor's poll
                self._reported.add(problem)
                log.warning("cannot render %s", problem)
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        return self._answer(request, body, "application/json; charset=utf-8", "no-cache", cors=True, public=True)

    async def status_js(self, request: web.Request) -> web.Response:
        return self._answer(request, self.status_script, "text/javascript; charset=utf-8", "public, max-age=300")

    async def favicon(self, request: web.Request) -> web.Response:
        return self._answer(request, self.icon, "image/x-icon", "public, max-age=86400")

    async def banner_js(self, request: web.Request) -> web.Response:
        return self._answer(request, self.script, "text/javascript; charset=utf-8", "public, max-age=300")

    async def preflight(self, request: web.Request) -> web.Response:
        from aiohttp import web

        headers = dict(_COMMON)
        self._cors(request, headers, public=request.path == "/banner.json")
        if "Access-Control-Allow-Origin" in headers:
            headers.update({"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                            "Access-Control-Allow-Headers": "If-None-Match", "Access-Control-Max-Age": "600"})
        return web.Response(status=204, headers=headers)

    async def status_json(self, request: web.Request) -> web.Response:
        body = json.dumps(self._status(request), ensure_ascii=False, separators=(",", ":")).encode()
        return self._answer(request, body, "application/json; charset=utf-8", "no-cache",
                            {"Vary": "Accept-Language"}, cors=True)

    async def status_html(self, request: web.Request) -> web.Response:
        from aiohttp import web

        locale, health, now = self._locale(request), health_states(self.daemon), self.daemon.clock.now()

        def render() -> tuple[bytes, dict[str, str]]:
            data = status_data(self.loaded, self.daemon.store, health, now, locale)
            return self.page.render(data).encode(), {"Content-Language": data["locale"]}

        try:  # the same page until the ledger, health, minute or a window's start moves (public/pages.py)
            page = self.pages.get(self.pages.key(self.daemon.store, locale, health, now), render)
        except Exception:  # a broken custom template: say so in the log, not to the visitor
            log.exception("cannot render the status page")
            return web.Response(status=500, text="The status page is temporarily unavailable.\n",
                                headers=_COMMON)
        return self._answer(request, page.body, "text/html; charset=utf-8", "no-cache",
                            {"Vary": "Accept-Language", "Content-Security-Policy": _PAGE_CSP,
                             **dict(page.headers)}, etag=page.etag)

    async def voice_xml(self, request: web.Request) -> web.Response:
        from aiohttp import web

        try:
            parts = announcement(self.loaded, self.daemon.store, self.daemon.clock.now(), self.page.catalog)
        except Exception:  # better silence than a provider error tone: log it and announce nothing
            log.exception("cannot render the phone announcement")
            parts = []
        body = twiml(parts, self.public.voice_next_url, self.public.voice_names).encode()
        return web.Response(body=body, headers={**_COMMON, "Cache-Control": "no-cache",
                                                "Content-Type": "application/xml; charset=utf-8"})


def add_public_routes(app: web.Application, daemon: Served) -> None:
    """Mount the public pages on the daemon's HTTP app."""
    site = PublicSite(daemon)
    app.router.add_get("/banner.json", site.banner_json)
    app.router.add_route("OPTIONS", "/banner.json", site.preflight)
    app.router.add_get("/banner.js", site.banner_js)
    app.router.add_get("/status", site.status_html)
    app.router.add_get("/status.json", site.status_json)
    app.router.add_get("/status.js", site.status_js)
    app.router.add_get("/favicon.ico", site.favicon)
    app.router.add_route("OPTIONS", "/status.json", site.preflight)
    app.router.add_get("/voice.xml", site.voice_xml)
    # Telephony providers fetch their call instructions with POST by default; it reads, like the GET.
    app.router.add_post("/voice.xml", site.voice_xml)
