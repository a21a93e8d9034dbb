"""The console's routes on the daemon's HTTP app: the dashboard, declare, a situation's page (restore,
settle, retry, update), maintenance, the auto-responder, and the campaign pages (campaign_web.py), over the
plumbing of base.py.

Every page is one server-rendered HTML answer (autoescaped sandboxed jinja2, inline CSS, one small script of
its own for the dashboard's refresh, no outside requests); every change is a POST form carrying the session's
CSRF token, checked against the role (a refused action answers 403 and its form is not shown), and done
through the same engine calls as the CLI, with the signed-in user's name as `by`. Cookies are HttpOnly,
SameSite=Lax, scoped to /console/, and Secure when the request came over https.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from continuity.console.auth import can
from continuity.console.base import HEADERS, ROOT, Hosted, log
from continuity.console.campaign_web import CampaignPages
from continuity.errors import ContinuityError

if TYPE_CHECKING:
    from aiohttp import web


class Console(CampaignPages):
    """Every page of the console, bound to one daemon."""

    # pages -----------------------------------------------------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.Response:
        from continuity.console.views import dashboard_data

        sess, user = self.reader(request)
        return self.html(request, "dashboard.html", **self.common(sess, user),
                         **dashboard_data(self.daemon, self.daemon.clock.now()))

    async def declare_page(self, request: web.Request) -> web.Response:
        sess, user = self.reader(request)
        if not can(user.role, "declare"):
            return self.html(request, "refused.html", 403, **self.common(sess, user), reason="role")
        return self.html(request, "declare.html", **self.common(sess, user),
                         **self.declare_fields({}, {}, self.locale(request)))

    def declare_fields(self, form: dict[str, str], errors: dict[str, str], locale: str = "en") -> dict[str, Any]:
        from continuity.console.views import cause_choices

        channels = list(self.daemon.loaded.config.channels)
        return {"channels": channels, "form": form, "errors": errors, "preview": None,
                "causes": cause_choices(self.daemon.loaded, locale)}

    async def declare(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.console.views import check_cause, check_declare

        sess, user, form = await self.guard(request, "declare")
        now = self.daemon.clock.now()
        locale = self.locale(request)
        channel, reason, eta, errors = check_declare(self.daemon.loaded, form, now, locale)
        cause = check_cause(self.daemon.loaded, form, errors, locale)
        fields = self.declare_fields(form, errors, locale)
        if errors:
            return self.html(request, "declare.html", 400, **self.common(sess, user), **fields)
        if form.get("do") == "preview":
            from continuity.console.views import preview_declare

            # Never continuity.preview's scratch copy here: reading the live store's files from inside the
            # daemon's own process would drop its SQLite locks (POSIX locks are per process).
            try:
                fields["preview"] = preview_declare(self.daemon, channel, reason=reason, eta=eta, by=user.name,
                                                    now=now, cause=cause)
            except ContinuityError as exc:
                fields["errors"] = {"channel": str(exc)}
                return self.html(request, "declare.html", 400, **self.common(sess, user), **fields)
            return self.html(request, "declare.html", **self.common(sess, user), **fields)
        try:
            # What customers read as the cause: the prepared key; the staff's reason stays with staff.
            told = {"public_reason": False, **({"cause": cause} if cause else {})}
            result = self.daemon.engine.open(channel, reason=reason, eta=eta, by=user.name, source="console",
                                             data=told)
        except ContinuityError as exc:
            fields["errors"] = {"reason": str(exc)}
            return self.html(request, "declare.html", 400, **self.common(sess, user), **fields)
        log.info("console: %s declared an outage of %s (situation %s)", user.name, channel, result.situation.id)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}situations/{result.situation.id}", headers=HEADERS)

    def _situation_id(self, request: web.Request) -> int:
        from aiohttp import web

        try:
            return int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound(headers=HEADERS) from None

    async def situation(self, request: web.Request, *, errors: dict[str, str] | None = None,
                        status: int = 200, sid: int | None = None) -> web.Response:
        from aiohttp import web

        from continuity.console.views import situation_data

        sess, user = self.reader(request)
        sid = self._situation_id(request) if sid is None else sid
        data = situation_data(self.daemon, sid, self.daemon.clock.now())
        if data is None:
            raise web.HTTPNotFound(text="No such situation.", headers=HEADERS)
        return self.html(request, "situation.html", status, **self.common(sess, user), sit=data,
                         errors=errors or {})

    async def restore(self, request: web.Request) -> web.Response:
        from aiohttp import web

        sess, user, form = await self.guard(request, "restore")
        sit = self.daemon.store.get_situation(self._situation_id(request))
        if sit is None:
            raise web.HTTPNotFound(headers=HEADERS)
        if not sit.is_open:
            raise web.HTTPSeeOther(f"{ROOT}situations/{sit.id}", headers=HEADERS)
        try:
            self.daemon.engine.close(sit.channel, by=user.name, note=form.get("note") or None, kind=sit.kind)
        except ContinuityError as exc:
            return await self.situation(request, errors={"note": str(exc)}, status=400)
        log.info("console: %s restored %s (situation %s)", user.name, sit.channel, sit.id)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}situations/{sit.id}", headers=HEADERS)

    async def update(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.console.views import check_declare

        sess, user, form = await self.guard(request, "declare")
        sit = self.daemon.store.get_situation(self._situation_id(request))
        if sit is None or not sit.is_open or sit.kind != "outage":
            raise web.HTTPNotFound(headers=HEADERS)
        _, reason, eta, errors = check_declare(self.daemon.loaded, {**form, "channel": sit.channel},
                                               self.daemon.clock.now(), self.locale(request))
        if errors:
            return await self.situation(request, errors=errors, status=400)
        try:
            self.daemon.engine.open(sit.channel, reason=reason, eta=eta, by=user.name, source="console")
        except ContinuityError as exc:
            return await self.situation(request, errors={"reason": str(exc)}, status=400)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}situations/{sit.id}", headers=HEADERS)

    async def step(self, request: web.Request) -> web.Response:
        """Settle an uncertain step (sent / resend) or send a failed one again."""
        from aiohttp import web

        from continuity.settle import confirm, retry

        verb = request.match_info["verb"]
        action = {"sent": "settle", "resend": "settle", "retry": "retry"}.get(verb)
        if action is None:
            raise web.HTTPNotFound(headers=HEADERS)
        sess, user, form = await self.guard(request, action)
        try:
            row_id = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound(headers=HEADERS) from None
        row = self.daemon.store.get_step(row_id)
        if row is None:
            raise web.HTTPNotFound(headers=HEADERS)
        try:
            if verb == "retry":
                retry(self.daemon.engine, row_id, by=user.name)
            else:
                confirm(self.daemon.engine, row_id, sent=verb == "sent", by=user.name)
        except ContinuityError as exc:
            return await self.situation(request, errors={f"step-{row_id}": str(exc)}, status=400,
                                        sid=row.situation_id)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}situations/{row.situation_id}", headers=HEADERS)

    # maintenance and the auto-responder -------------------------------------------------------------------

    async def maintenance(self, request: web.Request, *, form: dict[str, str] | None = None,
                          errors: dict[str, str] | None = None, status: int = 200) -> web.Response:
        from continuity.console.operations import windows

        sess, user = self.reader(request)
        return self.html(request, "maintenance.html", status, **self.common(sess, user),
                         windows=windows(self.daemon), form=form or {}, errors=errors or {},
                         channels=list(self.daemon.loaded.config.channels))

    async def maintenance_add(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.console.operations import plan_window

        _, user, form = await self.guard(request, "maintenance")
        window_id, errors = plan_window(self.daemon.engine, form, by=user.name)
        if window_id is None:
            return await self.maintenance(request, form=form, errors=errors, status=400)
        log.info("console: %s planned maintenance #%s", user.name, window_id)
        raise web.HTTPSeeOther(f"{ROOT}maintenance", headers=HEADERS)

    async def maintenance_cancel(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.maintenance import cancel_window

        _, user, _form = await self.guard(request, "maintenance")
        try:
            window = cancel_window(self.daemon.engine, int(request.match_info["id"]), user.name)
        except ValueError:
            raise web.HTTPNotFound(headers=HEADERS) from None
        except ContinuityError as exc:
            return await self.maintenance(request, errors={"form": str(exc)}, status=400)
        if window.situation_id:
            await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}maintenance", headers=HEADERS)

    async def autoreply(self, request: web.Request) -> web.Response:
        from continuity.console.operations import autoreply_boxes

        sess, user = self.reader(request)
        return self.html(request, "autoreply.html", **self.common(sess, user), boxes=autoreply_boxes(self.daemon))


def add_console_routes(app: web.Application, daemon: Hosted) -> None:
    """Mount the console on the daemon's HTTP app (unless `daemon.console.enabled` is false)."""
    from aiohttp import web

    if not daemon.loaded.config.daemon.console.enabled:
        return
    console = Console(daemon)

    async def bare(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(ROOT)

    from importlib import resources

    script = (resources.files("continuity.console") / "console.js").read_bytes()

    async def console_js(request: web.Request) -> web.Response:
        return web.Response(body=script, headers={**HEADERS, "Cache-Control": "public, max-age=300",
                                                  "Content-Type": "text/javascript; charset=utf-8"})

    app.router.add_get("/console", bare)
    app.router.add_get(f"{ROOT}console.js", console_js)
    app.router.add_get(ROOT, console.dashboard)
    app.router.add_get(f"{ROOT}login", console.login_page)
    app.router.add_get(ROOT + "lang/{code}", console.language)
    app.router.add_post(f"{ROOT}login", console.login)
    app.router.add_post(f"{ROOT}logout", console.logout)
    app.router.add_get(f"{ROOT}declare", console.declare_page)
    app.router.add_post(f"{ROOT}declare", console.declare)
    app.router.add_get(ROOT + "situations/{id}", console.situation)
    app.router.add_post(ROOT + "situations/{id}/restore", console.restore)
    app.router.add_post(ROOT + "situations/{id}/update", console.update)
    app.router.add_post(ROOT + "steps/{id}/{verb}", console.step)
    app.router.add_get(f"{ROOT}campaigns", console.campaigns)
    app.router.add_get(f"{ROOT}campaigns/new", console.campaign_page)
    app.router.add_post(f"{ROOT}campaigns/new", console.campaign_register)
    app.router.add_post(f"{ROOT}campaigns/upload", console.campaign_upload)
    app.router.add_get(ROOT + "campaigns/{name}.yaml", console.campaign_yaml)
    app.router.add_post(ROOT + "campaigns/{name}/cancel", console.campaign_cancel)
    app.router.add_get(ROOT + "campaigns/{name}/edit", console.campaign_edit_page)
    app.router.add_post(ROOT + "campaigns/{name}/edit", console.campaign_edit)
    app.router.add_get(ROOT + "campaigns/{name}", console.campaign_show)  # after new, NAME.yaml: first match wins
    app.router.add_get(f"{ROOT}maintenance", console.maintenance)
    app.router.add_post(f"{ROOT}maintenance", console.maintenance_add)
    app.router.add_post(ROOT + "maintenance/{id}/cancel", console.maintenance_cancel)
    app.router.add_get(f"{ROOT}autoreply", console.autoreply)
