"""The console's campaign pages: the list with each one's phase, register and edit from a form, upload a
campaign YAML file exactly as the CLI takes it, download any campaign as that YAML, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from continuity.console.auth import can
from continuity.console.base import HEADERS, ROOT, ConsoleBase, log
from continuity.errors import ContinuityError, InputErrors

if TYPE_CHECKING:
    from aiohttp import web


class CampaignPages(ConsoleBase):
    async def campaigns(self, request: web.Request) -> web.Response:
        from continuity.console.views import campaigns_data

        sess, user = self.reader(request)
        return self.html(request, "campaigns.html", **self.common(sess, user),
                         campaigns=campaigns_data(self.daemon, self.daemon.clock.now()),
                         registered=request.query.get("registered", "")[:64], upload_errors=[])


    async def campaign_page(self, request: web.Request) -> web.Response:
        from continuity.console.campaign_form import LABELS, blank

        sess, user = self.reader(request)
        if not can(user.role, "campaigns"):
            return self.html(request, "refused.html", 403, **self.common(sess, user), reason="role")
        return self.html(request, "campaign_form.html", **self.common(sess, user), form=blank(self.daemon.engine),
                         errors={}, labels=LABELS, channels=list(self.daemon.loaded.config.channels), editing=None)

    async def campaign_register(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.console.campaign_form import LABELS, register_from_form

        sess, user, form = await self.guard(request, "campaigns")
        name, errors, _warnings = register_from_form(self.daemon.engine, form, by=user.name)
        if name is None:
            return self.html(request, "campaign_form.html", 400, **self.common(sess, user), form=form,
                             errors=errors, labels=LABELS, channels=list(self.daemon.loaded.config.channels),
                             editing=None)
        log.info("console: %s registered campaign %s", user.name, name)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}campaigns?registered={quote(name)}", headers=HEADERS)


    async def campaign_edit_page(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.campaigns.phases import find_run
        from continuity.console.campaign_form import LABELS, prefill

        sess, user = self.reader(request)
        if not can(user.role, "campaigns"):
            return self.html(request, "refused.html", 403, **self.common(sess, user), reason="role")
        try:
            run = find_run(self.daemon.engine, request.match_info["name"])
        except ContinuityError:
            raise web.HTTPNotFound(text="No such campaign.", headers=HEADERS) from None
        version = self.daemon.store.get_campaign_version(run.name, run.version)
        assert version is not None
        return self.html(request, "campaign_form.html", **self.common(sess, user),
                         form=prefill(self.daemon.engine, version.snapshot), errors={}, labels=LABELS,
                         channels=list(self.daemon.loaded.config.channels), editing=run.name)

    async def campaign_edit(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.console.campaign_form import LABELS, register_from_form

        sess, user, form = await self.guard(request, "campaigns")
        editing = request.match_info["name"]
        try:
            name, errors, _warnings = register_from_form(self.daemon.engine, form, by=user.name, editing=editing)
        except ContinuityError as exc:  # no such campaign, or not active any more
            name, errors = None, {"form": str(exc)}
        if name is None:
            return self.html(request, "campaign_form.html", 400, **self.common(sess, user), form=form,
                             errors=errors, labels=LABELS, channels=list(self.daemon.loaded.config.channels),
                             editing=editing)
        log.info("console: %s changed campaign %s", user.name, name)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}campaigns?registered={quote(name)}", headers=HEADERS)

    async def campaign_upload(self, request: web.Request) -> web.Response:
        """A campaign file exactly as `continuity campaign register FILE` takes it."""
        import tempfile
        from pathlib import Path

        from aiohttp import web

        from continuity.campaigns.load import precheck
        from continuity.campaigns.phases import advance, register

        sess, user, _form = await self.guard(request, "campaigns")
        body = request.get("console_files", {}).get("file")
        errors: list[str] = []
        name = None
        if not body:
            errors.append("Choose a campaign file (.yaml) to upload.")
        else:
            with tempfile.TemporaryDirectory(prefix="continuity-upload-") as tmp:
                path = Path(tmp) / "campaign.yaml"
                path.write_bytes(body)
                try:
                    source = precheck(self.daemon.loaded, path, self.daemon.clock.now())
                    result = register(self.daemon.engine, source, by=user.name)
                    advance(self.daemon.engine, result.run.name)
                    name = result.run.name
                except ContinuityError as exc:
                    found = exc.errors if isinstance(exc, InputErrors) else [exc]
                    errors = [str(e).replace(str(path), "uploaded file") for e in found]
        if name is None:
            from continuity.console.views import campaigns_data

            return self.html(request, "campaigns.html", 400, **self.common(sess, user),
                             campaigns=campaigns_data(self.daemon, self.daemon.clock.now()), registered="",
                             upload_errors=errors)
        log.info("console: %s registered campaign %s from a file", user.name, name)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}campaigns?registered={quote(name)}", headers=HEADERS)

    async def campaign_yaml(self, request: web.Request) -> web.Response:
        """Any campaign's current version as the YAML `campaign register` reads (marketing and engineering
        share one format)."""
        import yaml
        from aiohttp import web

        from continuity.campaigns.phases import find_run

        self.reader(request)
        name = request.match_info["name"]
        try:
            run = find_run(self.daemon.engine, name)
        except ContinuityError:
            raise web.HTTPNotFound(text="No such campaign.", headers=HEADERS) from None
        version = self.daemon.store.get_campaign_version(run.name, run.version)
        if version is None:
            raise web.HTTPNotFound(headers=HEADERS)
        snapshot = {k: v for k, v in version.snapshot.items() if v is not None}
        text = f"# campaign {run.name}, version {run.version}, from the continuity console\n" + yaml.safe_dump(
            snapshot, allow_unicode=True, sort_keys=False)
        return web.Response(text=text, content_type="application/yaml", charset="utf-8",
                            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{run.name}.yaml"'})

    async def campaign_cancel(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.campaigns.phases import cancel

        sess, user, _form = await self.guard(request, "campaigns")
        try:
            run = cancel(self.daemon.engine, request.match_info["name"], by=user.name)
        except ContinuityError as exc:
            from continuity.console.views import campaigns_data

            return self.html(request, "campaigns.html", 400, **self.common(sess, user),
                             campaigns=campaigns_data(self.daemon, self.daemon.clock.now()), registered="",
                             upload_errors=[str(exc)])
        log.info("console: %s cancelled campaign %s", user.name, run.name)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}campaigns", headers=HEADERS)
