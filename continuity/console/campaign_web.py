"""The console's campaign pages: the list with each one's phase, register and edit from a form, upload a
campaign YAML file exactly as the CLI takes it, download any campaign as that YAML, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from continuity.console.auth import can
from continuity.console.base import HEADERS, ROOT, ConsoleBase, log
from continuity.errors import ContinuityError, InputErrors

if TYPE_CHECKING:
    from aiohttp import web

    from continuity.store.users import SessionRecord, UserRecord


class CampaignPages(ConsoleBase):
    async def campaigns(self, request: web.Request) -> web.Response:
        from continuity.console.views import campaigns_data

        sess, user = self.reader(request)
        return self.html(request, "campaigns.html", **self.common(sess, user),
                         campaigns=campaigns_data(self.daemon, self.daemon.clock.now()),
                         registered=request.query.get("registered", "")[:64], upload_errors=[])

    def campaign_form(self, request: web.Request, sess: SessionRecord, user: UserRecord, form: dict[str, str],
                      errors: dict[str, str], editing: str | None, status: int = 200, *, add: str = "",
                      preview: dict[str, Any] | None = None, warnings: list[str] | None = None) -> web.Response:
        from continuity.console.campaign_form import label_of, renumbered, shown_rows

        locale = self.locale(request)
        form = renumbered(form, errors)
        labels = {key: label_of(key, locale) for key in errors}
        org = self.daemon.loaded.config.organisation
        return self.html(request, "campaign_form.html", status, **self.common(sess, user), form=form,
                         errors=errors, labels=labels, channels=list(self.daemon.loaded.config.channels),
                         editing=editing, faq_rows=shown_rows(form, "faq", add=add == "add-faq"),
                         answer_rows=shown_rows(form, "answer", add=add == "add-answer"),
                         locales=list(org.locales), default_locale=org.default_locale, preview=preview,
                         warnings=warnings or [])

    async def campaign_page(self, request: web.Request) -> web.Response:
        from continuity.console.campaign_form import blank

        sess, user = self.reader(request)
        if not can(user.role, "campaigns"):
            return self.html(request, "refused.html", 403, **self.common(sess, user), reason="role")
        return self.campaign_form(request, sess, user, blank(self.daemon.engine), {}, None)

    async def campaign_register(self, request: web.Request) -> web.Response:
        return await self._campaign_post(request, None)

    async def _campaign_post(self, request: web.Request, editing: str | None) -> web.Response:
        """Register (or save) the form; or, without storing anything, show it again with one more row, or
        with the preview of what the campaign makes staff and customers read."""
        from aiohttp import web

        from continuity.console.campaign_form import check_only, register_from_form
        from continuity.console.campaign_preview import preview

        sess, user, form = await self.guard(request, "campaigns")
        do = form.pop("do", "register")
        if do in ("add-faq", "add-answer"):
            return self.campaign_form(request, sess, user, form, {}, editing, add=do)
        try:
            if do == "preview":
                campaign, errors, warnings = check_only(self.daemon.engine, form, editing, self.locale(request))
                if campaign is not None:
                    shown = preview(self.daemon.loaded, campaign, self.daemon.clock.now())
                    return self.campaign_form(request, sess, user, form, {}, editing, preview=shown,
                                              warnings=warnings)
                name = None
            else:
                name, errors, warnings = register_from_form(self.daemon.engine, form, by=user.name,
                                                            editing=editing, locale=self.locale(request))
        except ContinuityError as exc:  # no such campaign, or not active any more
            name, errors = None, {"form": str(exc)}
        if name is None:
            return self.campaign_form(request, sess, user, form, errors, editing, 400)
        log.info("console: %s %s campaign %s", user.name, "changed" if editing else "registered", name)
        await self.daemon.run_steps()
        raise web.HTTPSeeOther(f"{ROOT}campaigns?registered={quote(name)}", headers=HEADERS)

    async def campaign_edit_page(self, request: web.Request) -> web.Response:
        from aiohttp import web

        from continuity.campaigns.phases import find_run
        from continuity.console.campaign_form import prefill

        sess, user = self.reader(request)
        if not can(user.role, "campaigns"):
            return self.html(request, "refused.html", 403, **self.common(sess, user), reason="role")
        try:
            run = find_run(self.daemon.engine, request.match_info["name"])
        except ContinuityError:
            raise web.HTTPNotFound(text="No such campaign.", headers=HEADERS) from None
        version = self.daemon.store.get_campaign_version(run.name, run.version)
        assert version is not None
        return self.campaign_form(request, sess, user, prefill(self.daemon.engine, version.snapshot), {}, run.name)

    async def campaign_edit(self, request: web.Request) -> web.Response:
        return await self._campaign_post(request, request.match_info["name"])

    async def campaign_show(self, request: web.Request) -> web.Response:
        """A campaign's page: its phase and dates, what it still lacks, and what it makes people read."""
        from aiohttp import web

        from continuity.campaigns.gaps import channels_of
        from continuity.campaigns.model import Campaign
        from continuity.campaigns.phases import find_run
        from continuity.console.campaign_preview import preview
        from continuity.console.views import PHASES, staff_time

        sess, user = self.reader(request)
        try:
            run = find_run(self.daemon.engine, request.match_info["name"])
        except ContinuityError:
            raise web.HTTPNotFound(text="No such campaign.", headers=HEADERS) from None
        version = self.daemon.store.get_campaign_version(run.name, run.version)
        assert version is not None
        campaign = Campaign.model_validate(version.snapshot)
        loaded = self.daemon.loaded
        info = {"name": run.name, "phase": PHASES.get(run.state, run.state), "version": run.version,
                "starts_text": staff_time(loaded, run.starts_at), "ends_text": staff_time(loaded, run.ends_at),
                "created_by": run.created_by, "situation_id": run.situation_id,
                "active": run.state in ("registered", "briefed", "live"),
                "channels": channels_of(loaded, campaign), "codes": [c.code for c in campaign.codes],
                "owner": campaign.owner}
        return self.html(request, "campaign.html", **self.common(sess, user), campaign=info,
                         preview=preview(loaded, campaign, self.daemon.clock.now()))

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
