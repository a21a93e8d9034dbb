"""The console's plumbing: sessions, sign-in and sign-out, CSRF and role checks, rendering, cookies; the
pages (continuity/console/web.py, campaign_web.py) build on `ConsoleBase`.

Every page is one server-rendered HTML answer (autoescaped sandboxed jinja2, inline CSS, no scripts, no
outside requests); every change is a POST form carrying the session's CSRF token, checked against the role
(a refused action answers 403 and its form is not shown), and done through the same engine calls as the CLI,
with the signed-in user's name as `by`. Cookies are HttpOnly, SameSite=Lax, scoped to /console/, and Secure
when the request came over https.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from continuity.console.auth import SignIn, can, is_throttled, record_attempt, same, session_hash, verify_password
from continuity.console.pages import Pages

if TYPE_CHECKING:
    from aiohttp import web

    from continuity.engine import Engine
    from continuity.public.web import Served
    from continuity.runner import StepResult
    from continuity.store.users import SessionRecord, UserRecord

    class Hosted(Served, Protocol):
        """What the console needs of the daemon: the public pages' view, its engine and running due steps."""

        engine: Engine

        async def run_steps(self) -> list[StepResult]: ...
else:
    Hosted = Any

log = logging.getLogger("continuity.console")

ROOT = "/console/"
SESSION_COOKIE = "continuity_console"
LANG_COOKIE = "continuity_console_lang"
LOGIN_COOKIE = "continuity_console_login"  # the sign-in form's CSRF token, before there is a session
# Inline CSS and one script of its own (the dashboard's refresh); nothing from anywhere else.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src 'self'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
MAX_FIELD = 2000


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console path of this site (no `//evil.example`)."""
    if target and target.startswith(ROOT) and not target.startswith("//") and "\\" not in target:
        return target
    return ROOT


class ConsoleBase:
    """Sessions, the checks every POST passes, and rendering; sign-in and sign-out."""

    def __init__(self, daemon: Hosted) -> None:
        self.daemon = daemon
        self.settings = daemon.loaded.config.daemon.console
        self.pages = Pages(daemon.loaded)

    # plumbing --------------------------------------------------------------------------------------------

    def html(self, request: web.Request, page: str, status: int = 200, **data: Any) -> web.Response:
        from aiohttp import web

        locale = self.locale(request)
        body = self.pages.render(page, locale, here=request.path, **data)
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8",
                            headers={**HEADERS, "Content-Language": locale})

    def locale(self, request: web.Request) -> str:
        return self.pages.pick(request.cookies.get(LANG_COOKIE))

    async def language(self, request: web.Request) -> web.Response:
        """Switch the console's language (a cookie: it changes nothing on the server, so a GET link is fine)."""
        from aiohttp import web

        code = self.pages.pick(request.match_info["code"])
        response = web.HTTPSeeOther(safe_next(request.query.get("next")), headers=HEADERS)
        self._cookie(request, response, LANG_COOKIE, code, 365 * 86400)
        return response

    def _cookie(self, request: web.Request, response: web.StreamResponse, name: str, value: str,
                max_age: int | None) -> None:
        response.set_cookie(name, value, path=ROOT, httponly=True, samesite="Lax", secure=request.secure,
                            max_age=max_age)

    def session(self, request: web.Request) -> tuple[SessionRecord, UserRecord] | None:
        sid = request.cookies.get(SESSION_COOKIE)
        if not sid or len(sid) > 200:
            return None
        store = self.daemon.store
        found = store.get_session(session_hash(sid), self.daemon.clock.now())
        if found is None:
            return None
        user = store.get_user(found.user_name)
        return None if user is None else (found, user)

    def to_login(self, request: web.Request) -> web.Response:
        from aiohttp import web

        target = request.path_qs if request.method == "GET" else ROOT
        raise web.HTTPSeeOther(f"{ROOT}login?next={quote(target, safe='/')}", headers=HEADERS)

    async def form(self, request: web.Request) -> dict[str, str]:
        """The text fields of a POST; an uploaded file (the campaign YAML) is kept aside as bytes."""
        from aiohttp.web_request import FileField

        data = await request.post()
        files = {k: v.file.read() for k, v in data.items() if isinstance(v, FileField)}
        request["console_files"] = files
        return {k: str(v)[:MAX_FIELD] for k, v in data.items() if isinstance(v, str)}

    async def guard(self, request: web.Request, action: str | None) -> tuple[SessionRecord, UserRecord,
                                                                            dict[str, str]]:
        """The session, user and form of a POST: signed in, the CSRF token right, the role allowed."""
        from aiohttp import web

        found = self.session(request)
        if found is None:
            self.to_login(request)
        assert found is not None
        sess, user = found
        form = await self.form(request)
        if not same(form.get("csrf", ""), sess.csrf):
            log.warning("console: POST %s by %s without a valid CSRF token refused", request.path, user.name)
            raise web.HTTPForbidden(text=self.pages.render("refused.html", self.locale(request),
                                                           **self.common(sess, user), reason="csrf"),
                                    content_type="text/html", headers=HEADERS)
        if action is not None and not can(user.role, action):
            raise web.HTTPForbidden(text=self.pages.render("refused.html", self.locale(request),
                                                           **self.common(sess, user), reason="role"),
                                    content_type="text/html", headers=HEADERS)
        return sess, user, form

    def reader(self, request: web.Request) -> tuple[SessionRecord, UserRecord]:
        found = self.session(request)
        if found is None:
            self.to_login(request)
        assert found is not None
        return found

    def common(self, sess: SessionRecord, user: UserRecord) -> dict[str, Any]:
        return {"user": user, "csrf": sess.csrf,
                "allowed": {a for a in ("declare", "restore", "settle", "retry", "campaigns", "maintenance")
                            if can(user.role, a)}}

    # sign-in / sign-out ----------------------------------------------------------------------------------

    async def login_page(self, request: web.Request) -> web.Response:
        if self.session(request) is not None:
            from aiohttp import web

            raise web.HTTPSeeOther(safe_next(request.query.get("next")), headers=HEADERS)
        return self.login_form(request, request.query.get("next"))

    def login_form(self, request: web.Request, target: str | None, *, error: str | None = None,
                   status: int = 200, username: str = "") -> web.Response:
        token = secrets.token_urlsafe(24)
        response = self.html(request, "login.html", status, csrf=token, next=safe_next(target), error=error,
                             username=username)
        self._cookie(request, response, LOGIN_COOKIE, token, None)
        return response

    async def login(self, request: web.Request) -> web.Response:
        from aiohttp import web

        form = await self.form(request)
        target = safe_next(form.get("next"))
        if not same(form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")) or not form.get("csrf"):
            return self.login_form(request, target, error="expired", status=403)
        name, password = form.get("username", ""), form.get("password", "")
        address = request.remote or "unknown"
        now = self.daemon.clock.now()
        # The store only on the event loop's thread (its one connection is not shared across threads); the
        # argon2 check, slow on purpose, in a worker thread so other requests go on meanwhile.
        store = self.daemon.store
        name = name.strip()[:64]
        if is_throttled(store, name, address, now):
            result = SignIn(throttled=True)
        else:
            user = store.get_user(name) if name else None
            ok = await asyncio.to_thread(verify_password, user, password)
            result = record_attempt(store, name, address, user if ok else None, now, self.settings.session_ttl)
        # A name that is no user is not logged: it may be a password typed into the wrong field.
        shown = repr(name) if store.get_user(name) is not None else "an unknown user name"
        if result.throttled:
            log.warning("console: sign-in as %s from %s throttled", shown, address)
            return self.login_form(request, target, error="throttled", status=429, username=name)
        if result.session_id is None:
            log.info("console: failed sign-in as %s from %s", shown, address)
            return self.login_form(request, target, error="wrong", status=401, username=name)
        log.info("console: %s signed in from %s", result.user.name if result.user else "?", address)
        response = web.HTTPSeeOther(target, headers=HEADERS)
        self._cookie(request, response, SESSION_COOKIE, result.session_id,
                     int(self.settings.session_ttl.total_seconds()))
        response.del_cookie(LOGIN_COOKIE, path=ROOT)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        from aiohttp import web

        sess, user, _ = await self.guard(request, None)
        with self.daemon.store.transaction():
            self.daemon.store.delete_session(sess.id_hash)
        log.info("console: %s signed out", user.name)
        response = web.HTTPSeeOther(f"{ROOT}login", headers=HEADERS)
        response.del_cookie(SESSION_COOKIE, path=ROOT)
        return response

